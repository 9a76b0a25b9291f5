//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeName is the process node's Node.
const nodeName = "process-node"

// startProcessNode runs tools/processnode with binDir first on PATH (so
// pods run the freshly built mpegflow) and waits until its Node is Ready
// and free of the not-ready taint, i.e. schedulable.
func startProcessNode(t *testing.T, cs kubernetes.Interface, kubeconfig, bin, binDir string) (*proc, string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "pods")
	p := startProc(t, "processnode", bin, []string{
		"--kubeconfig=" + kubeconfig, "--node-name=" + nodeName, "--work-dir=" + work,
		// Room for every encode pod the tests scale to at the operator's
		// default requests (1 CPU, 2Gi, 51Gi of ephemeral storage each).
		"--cpu=32", "--memory=64Gi", "--ephemeral-storage=2Ti", "--pods=110",
	}, []string{"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH")})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		p.running(t)
		n, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // node not registered yet: poll again until ctx expires
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		for _, taint := range n.Spec.Taints {
			if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
				return false, nil
			}
		}
		return ready && !n.Spec.Unschedulable, nil
	}, "wait for the process node to be Ready and untainted")
	if err != nil {
		t.Fatal(err)
	}
	return p, work
}

// podReady reports the pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// errTerminal says that a pod ended before what was awaited.
func errTerminal(p *corev1.Pod) error {
	return fmt.Errorf("pod %s ended %s early: %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
}

// podScratch is the directory the node made for the pod's "scratch" volume.
func podScratch(work string, p *corev1.Pod) string {
	return filepath.Join(work, fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID), "volumes", "scratch")
}
