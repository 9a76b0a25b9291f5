package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Provider runs each pod of the node as a local process (see podProcess)
// and tells the pod controller about every status change.
type Provider struct {
	client  kubernetes.Interface
	workDir string
	log     *slog.Logger

	mu     sync.Mutex
	pods   map[string]*podProcess // by namespace/name
	notify func(*corev1.Pod)
}

// NewProvider returns a provider whose pods get their scratch directories
// and logs under workDir.
func NewProvider(client kubernetes.Interface, workDir string, log *slog.Logger) (*Provider, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	return &Provider{client: client, workDir: workDir, log: log, pods: map[string]*podProcess{}}, nil
}

var (
	_ nodeutil.Provider = (*Provider)(nil)
	_ interface {
		NotifyPods(context.Context, func(*corev1.Pod))
	} = (*Provider)(nil)
)

func podKey(namespace, name string) string { return namespace + "/" + name }

// NotifyPods registers the pod controller's status callback.
func (p *Provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = f
}

// publish hands a copy of the pod with its current status to the pod
// controller, which writes it to the API.
func (p *Provider) publish(pod *corev1.Pod) {
	p.mu.Lock()
	f := p.notify
	p.mu.Unlock()
	if f != nil {
		f(pod)
	}
}

// CreatePod starts the pod's process. A process that cannot start leaves
// the pod Failed with the reason, as a kubelet does on a start error.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	key := podKey(pod.Namespace, pod.Name)
	p.mu.Lock()
	if _, ok := p.pods[key]; ok {
		p.mu.Unlock()
		return nil
	}
	dir := filepath.Join(p.workDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
	pp := newPodProcess(pod, dir, p.log.With("pod", key), p.publish, p.finishDelete)
	p.pods[key] = pp
	p.mu.Unlock()
	pp.start(ctx)
	return nil
}

// UpdatePod accepts the new object; a running process keeps running, as
// a pod's container does when mutable fields change.
func (p *Provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	pp := p.pods[podKey(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if pp == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	pp.updateSpec(pod)
	return nil
}

// DeletePod stops the process (SIGTERM, SIGKILL after the grace period);
// the pod is removed from the API once the process has exited.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	pp := p.pods[podKey(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if pp == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	grace := int64(30)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	pp.terminate(ctx, grace)
	return nil
}

// finishDelete runs when the process of a pod being deleted has exited:
// it writes the final status and deletes the pod object at once, instead
// of letting the pod controller wait out the whole grace period.
func (p *Provider) finishDelete(pod *corev1.Pod) {
	key := podKey(pod.Namespace, pod.Name)
	p.mu.Lock()
	if cur := p.pods[key]; cur != nil && cur.uid() == pod.UID {
		delete(p.pods, key)
	}
	p.mu.Unlock()
	ctx := context.Background()
	pods := p.client.CoreV1().Pods(pod.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID {
			return err
		}
		cur.Status = pod.Status
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		p.log.Warn("write final status of a deleted pod; its Job may count it as failed", "pod", key, "error", err)
	}
	opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(pod.UID))}
	if err := pods.Delete(ctx, pod.Name, opts); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.log.Warn("finish deleting pod; the pod controller deletes it after its grace period", "pod", key, "error", err)
	}
}

// StopAll kills every process still running (the node is going away).
func (p *Provider) StopAll(node string) {
	p.mu.Lock()
	pods := make([]*podProcess, 0, len(p.pods))
	for _, pp := range p.pods {
		pods = append(pods, pp)
	}
	p.mu.Unlock()
	for _, pp := range pods {
		pp.kill()
	}
	p.log.Info("node stopped; every pod process was killed", "node", node, "pods", len(pods))
}

// GetPod returns the pod with its current status.
func (p *Provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	pp := p.pods[podKey(namespace, name)]
	p.mu.Unlock()
	if pp == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	return pp.snapshot(), nil
}

// GetPodStatus returns the pod's current status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod the node runs or ran and still holds.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, pp := range p.pods {
		out = append(out, pp.snapshot())
	}
	return out, nil
}

// GetContainerLogs returns the process's combined stdout and stderr.
func (p *Provider) GetContainerLogs(_ context.Context, namespace, name, _ string, _ api.ContainerLogOpts) (io.ReadCloser, error) {
	p.mu.Lock()
	pp := p.pods[podKey(namespace, name)]
	p.mu.Unlock()
	if pp == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	f, err := os.Open(pp.logPath())
	if err != nil {
		return nil, fmt.Errorf("open log of pod %s/%s: %w", namespace, name, err)
	}
	return f, nil
}

// RunInContainer is not offered: pods have no container to enter.
func (p *Provider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errdefs.InvalidInput("processnode: exec into a pod is not supported")
}

// AttachToContainer is not offered.
func (p *Provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("processnode: attach is not supported")
}

// PortForward is not offered: pods share the host's network.
func (p *Provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("processnode: port-forward is not supported")
}

// GetStatsSummary reports no statistics.
func (p *Provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

// GetMetricsResource reports no metrics.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
