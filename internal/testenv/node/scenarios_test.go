//go:build cluster

package node_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// encodeJob: a job submitted through the API Service becomes a Job KEDA
// makes from the shared pool's ScaledJob; its pod (the built encoder
// image, non-root, read-only root, no service-account token) claims it
// from the coordinator by the Service's DNS name, downloads its input
// through a presigned URL, uploads its outputs and completes.
func (rel *release) encodeJob(t *testing.T) {
	started := time.Now()
	ctx := t.Context()
	before := len(rel.kubeJobs(ctx, t, "default"))
	asset := rel.clip(t, "first", 2, "320x240")
	j := rel.submit(t, asset, "default")
	rel.waitJobs(t, jobTimeout, j.ID)
	t.Logf("submitted → completed in %s", time.Since(started).Round(time.Millisecond))
	w := rel.workers(t, j.ID)
	require.Len(t, w, 1, "one claim")
	jobs := rel.kubeJobs(ctx, t, "default")
	require.Len(t, jobs, before+1, "KEDA made one Job for one queued job")
	var job *corev1.PodTemplateSpec
	for i := range jobs {
		if strings.HasPrefix(w[0], jobs[i].Name+"-") {
			job = &jobs[i].Spec.Template
		}
	}
	require.NotNil(t, job, "pod %s belongs to one of KEDA's Jobs of the shared pool", w[0])
	spec := job.Spec
	require.False(t, ptr.Deref(spec.AutomountServiceAccountToken, true), "no service-account token in encode pods")
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	require.True(t, strings.HasPrefix(c.Image, "localhost/mpegflow-encoder:"), "the built encoder image: %s", c.Image)
	require.NotNil(t, c.SecurityContext)
	require.True(t, ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false), "read-only root filesystem")
	nonRoot := ptr.Deref(c.SecurityContext.RunAsNonRoot, false) ||
		(spec.SecurityContext != nil && ptr.Deref(spec.SecurityContext.RunAsNonRoot, false))
	require.True(t, nonRoot, "runAsNonRoot")
	var coordinator string
	for _, e := range c.Env {
		if e.Name == encodepod.EnvCoordinator {
			coordinator = e.Value
		}
	}
	want := fmt.Sprintf("mf-mpegflow-grpc.%s.svc", rel.ns)
	require.True(t, strings.HasPrefix(coordinator, want), "the encode pod dials the coordinator Service by name: %s=%q", encodepod.EnvCoordinator, coordinator)
	rel.verifyOutputs(t, j.ID)
	t.Logf("scenario (REST → KEDA Job → encode pod → S3 → completed) took %s", time.Since(started).Round(time.Millisecond))
}

// dedicatedPool: a pool the tenant creates over REST gets its own
// ScaledJob, which KEDA takes up; its job runs in a pod of that ScaledJob.
func (rel *release) dedicatedPool(t *testing.T) {
	started := time.Now()
	ctx := t.Context()
	p, err := rel.api.CreatePool(ctx, map[string]any{
		"name": "dedicated", "max_replicas": 2, "polling_interval_seconds": 5,
	})
	require.NoError(t, err, "create a dedicated pool")
	rel.dedicated = p.ID
	rel.waitScaledJobReady(ctx, t, p.ID)
	asset := rel.clip(t, "dedicated", 2, "320x240")
	j := rel.submit(t, asset, p.ID)
	rel.waitJobs(t, jobTimeout, j.ID)
	w := rel.workers(t, j.ID)
	require.Len(t, w, 1)
	require.True(t, strings.HasPrefix(w[0], "mpegflow-pool-"+p.ID+"-"), "the dedicated pool's job ran in its own pod: %s", w[0])
	require.Len(t, rel.kubeJobs(ctx, t, p.ID), 1)
	rel.verifyOutputs(t, j.ID)
	t.Logf("scenario (pool created, ScaledJob Ready, job completed on it) took %s", time.Since(started).Round(time.Millisecond))
}

// pauseResume: the tenant pauses its dedicated pool (the shared pool is the
// platform's: a tenant cannot pause it); the pool's ScaledJob is annotated,
// a job then submitted stays queued and KEDA makes no Job for it across
// several of its polling intervals; resuming runs it.
func (rel *release) pauseResume(t *testing.T) {
	started := time.Now()
	ctx := t.Context()
	require.NotEmpty(t, rel.dedicated, "runs after DedicatedPool")
	pool := rel.dedicated
	_, err := rel.api.PausePool(ctx, pool)
	require.NoError(t, err, "pause")
	rel.waitPaused(ctx, t, pool, true)
	before := len(rel.kubeJobs(ctx, t, pool))
	asset := rel.clip(t, "paused", 2, "320x240")
	j := rel.submit(t, asset, pool)
	// KEDA polls the pool every 5 s (its polling_interval_seconds):
	// watch four intervals for a Job that must not come.
	window := time.Now().Add(20 * time.Second)
	for time.Now().Before(window) {
		require.Len(t, rel.kubeJobs(ctx, t, pool), before, "no Job for a paused pool")
		got, err := rel.api.GetJob(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, client.JobQueued, got.Status, "the paused pool's job waits")
		time.Sleep(time.Second)
	}
	_, err = rel.api.ResumePool(ctx, pool)
	require.NoError(t, err, "resume")
	rel.waitPaused(ctx, t, pool, false)
	rel.waitJobs(t, jobTimeout, j.ID)
	require.Len(t, rel.kubeJobs(ctx, t, pool), before+1, "one Job after resume")
	t.Logf("scenario (pause, 20 s without a Job, resume, completed) took %s", time.Since(started).Round(time.Millisecond))
}

// killedEncodeRequeued: SIGKILL to a running encode pod's container (as
// the kernel's OOM killer or a node's crash delivers it) tells the
// coordinator nothing; once the job's lease lapses it is requeued, KEDA
// makes a new Job and a second pod completes it.
func (rel *release) killedEncodeRequeued(t *testing.T) {
	started := time.Now()
	ctx := t.Context()
	asset := rel.clip(t, "killed", 40, "1280x720")
	j := rel.submit(t, asset, "default")
	running := rel.waitStatus(t, j.ID, client.JobRunning, jobTimeout)
	require.NotNil(t, running.LeaseExpiresAt, "a running job has a lease")
	w := rel.workers(t, j.ID)
	require.Len(t, w, 1)
	pod, err := rel.Clientset().CoreV1().Pods(rel.ns).Get(ctx, w[0], metav1.GetOptions{})
	require.NoError(t, err, "the worker id is the encode pod's name")
	id := containerID(t, pod)
	_, err = rel.Containerd().Ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id)
	require.NoError(t, err)
	killed := time.Now()
	t.Logf("killed container %s of pod %s", id, pod.Name)
	var left client.Job
	cluster.Eventually(t, 5*time.Minute, func() bool {
		var err error
		left, err = rel.api.GetJob(ctx, j.ID)
		require.NoError(t, err)
		require.NotContains(t, []string{client.JobFailed, client.JobCancelled}, left.Status)
		return left.Status != client.JobRunning || ptr.Deref(left.WorkerID, "") != pod.Name
	}, func() string { return "job " + j.ID + " left pod " + pod.Name + "\n" + rel.describe(t) })
	leftAt := time.Now()
	require.False(t, leftAt.Before(running.LeaseExpiresAt.Add(-time.Second)),
		"the job left the killed pod at %s, before its lease lapsed at %s", leftAt, running.LeaseExpiresAt)
	rel.waitJobs(t, jobTimeout, j.ID)
	w = rel.workers(t, j.ID)
	require.Len(t, w, 2, "claimed by the killed pod, then by a new one: %v", w)
	require.Equal(t, pod.Name, w[0])
	require.NotEqual(t, pod.Name, w[1])
	rel.verifyOutputs(t, j.ID)
	t.Logf("scenario (SIGKILL, requeued %s after the kill, completed by %s) took %s",
		leftAt.Sub(killed).Round(time.Second), w[1], time.Since(started).Round(time.Millisecond))
}

// encodePodPolicy: a pod labelled as the shared pool's encode pods (its
// ScaledJob's pod template labels, so under the pool's NetworkPolicy)
// reaches the coordinator by its Service name and object storage (outside
// the cluster, allowed by the chart's s3.cidrs and s3.ports), but not
// Postgres at the same address, a pod of the dedicated pool, or the API's
// REST port, which an unlabelled pod of the same namespace reaches.
func (rel *release) encodePodPolicy(t *testing.T) {
	started := time.Now()
	require.NotEmpty(t, rel.dedicated, "runs after DedicatedPool")
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	poolA := rel.podTemplateLabels(ctx, t, "default")
	poolB := rel.podTemplateLabels(ctx, t, rel.dedicated)

	// A server in pool B's clothes.
	_, err := rel.Clientset().CoreV1().Pods(rel.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pool-b-server", Labels: poolB},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "serve", Image: rel.image, ImagePullPolicy: corev1.PullNever,
			Args: []string{"serve", "-addr", ":" + strconv.Itoa(servePort)},
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var poolBIP string
	cluster.Eventually(t, podTimeout, func() bool {
		p, err := rel.Clientset().CoreV1().Pods(rel.ns).Get(ctx, "pool-b-server", metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false
		}
		poolBIP = p.Status.PodIP
		return poolBIP != ""
	}, func() string { return "pool B's server running" })
	t.Cleanup(func() {
		_ = rel.Clientset().CoreV1().Pods(rel.ns).Delete(context.Background(), "pool-b-server", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})

	svc := func(name string) string { return fmt.Sprintf("%s.%s.svc.%s", name, rel.ns, clusterDomain) }
	rest := rel.portOf(ctx, t, "mf-mpegflow", "http")
	grpc := rel.portOf(ctx, t, "mf-mpegflow-grpc", "grpc")
	s3 := rel.s3
	probes := []struct {
		name   string
		labels map[string]string
		host   string
		port   int
		open   bool
	}{
		{"a-coordinator", poolA, svc("mf-mpegflow-grpc"), grpc, true},
		{"a-storage", poolA, s3.Addr().String(), int(s3.Port()), true},
		{"a-postgres", poolA, rel.pg.Addr().String(), int(rel.pg.Port()), false}, // same address, a port s3.ports does not list
		{"a-rest", poolA, svc("mf-mpegflow"), rest, false},
		{"a-pool-b", poolA, poolBIP, servePort, false},
		{"plain-rest", nil, svc("mf-mpegflow"), rest, true},
	}
	for _, p := range probes {
		args := []string{"get", "-tcp", "-host", p.host, "-port", strconv.Itoa(p.port)}
		if p.open { // retried until it connects
			args = append(args, "-want", "1", "-timeout", "60s")
		} else { // no connection for 20 s once the policy applies to the new pod
			args = append(args, "-refused", "-timeout", "20s")
		}
		rel.startJob(ctx, t, rel.ns, "probe-"+p.name, p.labels, args...)
	}
	for _, p := range probes {
		exit, rep := rel.clientResult(ctx, t, rel.ns, "probe-"+p.name)
		if p.open {
			require.Equal(t, int32(0), exit, "probe %s must connect to %s:%d: %+v", p.name, p.host, p.port, rep)
		} else {
			require.Equal(t, int32(0), exit, "probe %s must not connect to %s:%d: %+v", p.name, p.host, p.port, rep)
			require.Positive(t, rep.Errors, "probe %s was refused", p.name)
			require.Zero(t, rep.Leaks, "probe %s: no connection once refused", p.name)
		}
	}
	t.Logf("scenario (encode-pod egress: coordinator and storage open, REST and pool B refused) took %s", time.Since(started).Round(time.Millisecond))
}

// rollingAPI: `helm upgrade` to a new image tag of the API rolls its
// Deployment while a client keeps submitting (one job every 3 s); every submission is
// accepted and every accepted job completes.
func (rel *release) rollingAPI(t *testing.T) {
	started := time.Now()
	ctx := t.Context()
	const tag = "rolled"
	deploy, err := rel.Clientset().AppsV1().Deployments(rel.ns).Get(ctx, "mf-mpegflow", metav1.GetOptions{})
	require.NoError(t, err)
	oldImage := deploy.Spec.Template.Spec.Containers[0].Image
	newImage := oldImage[:strings.LastIndex(oldImage, ":")+1] + tag
	_, err = rel.Containerd().Ctr(ctx, "--namespace", "k8s.io", "images", "tag", "--force", oldImage, newImage)
	require.NoError(t, err)
	asset := rel.clip(t, "rolling", 1, "320x240")

	var (
		mu       sync.Mutex
		accepted []string
		refused  []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Second):
			}
			j, err := rel.api.CreateJob(ctx, client.JobRequest{Input: client.JobInput{AssetID: asset}, Workflow: workflow, Pool: "default"})
			mu.Lock()
			if err != nil {
				refused = append(refused, err.Error())
			} else {
				accepted = append(accepted, j.ID)
			}
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-done:
		default:
			close(stop)
			<-done
		}
	}()
	// A few submissions before the roll begins.
	cluster.Eventually(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 2
	}, func() string { return "submissions accepted before the roll" })
	t0 := time.Now()
	out := rel.helmUpgrade(ctx, t, "image.tag="+tag)
	cluster.Eventually(t, podTimeout, func() bool {
		d, err := rel.Clientset().AppsV1().Deployments(rel.ns).Get(ctx, "mf-mpegflow", metav1.GetOptions{})
		return err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == 2 &&
			d.Status.ReadyReplicas == 2 && d.Status.Replicas == 2
	}, func() string { return "the API Deployment rolled to " + newImage + "\n" + rel.describe(t) })
	rolled := time.Since(t0)
	t.Logf("helm upgrade and roll took %s:\n%s", rolled.Round(time.Millisecond), out)
	// A few submissions after it, to the new replicas.
	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	cluster.Eventually(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= n+2
	}, func() string { return "submissions accepted after the roll" })
	close(stop)
	<-done
	pods, err := rel.Clientset().CoreV1().Pods(rel.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=server"})
	require.NoError(t, err)
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			require.Equal(t, newImage, p.Spec.Containers[0].Image, "pod %s runs the new tag", p.Name)
		}
	}
	require.Empty(t, refused, "no submission refused while the API rolled")
	rel.waitJobs(t, 2*jobTimeout, accepted...)
	t.Logf("scenario (%d jobs submitted across a %s roll, all completed) took %s", len(accepted), rolled.Round(time.Second), time.Since(started).Round(time.Millisecond))
}
