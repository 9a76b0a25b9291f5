//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/mpegflow/mpegflow/client"
)

// jobTimeout bounds one encode from submission to completion on a loaded
// two-core machine.
const jobTimeout = 5 * time.Minute

// TestE2E starts the rig once and runs the scenarios against it in order;
// each scenario's wall time and the rig's peak memory during it are logged
// (and written to $MPEGFLOW_E2E_REPORT) for docs/benchmarks.md. It runs
// beside the package's other tests, each on a rig of its own; the peak
// memory is of every process this test binary started, so for TestE2E's
// rig alone run it alone (-run '^TestE2E$').
func TestE2E(t *testing.T) {
	t.Parallel()
	r := startRig(t)
	var results []result
	t.Cleanup(func() { report(t, r, results) })

	var dedicated string
	r.measure(t, &results, "happy_path", func(t *testing.T) { happyPath(t, r) })
	r.measure(t, &results, "dedicated_pool", func(t *testing.T) { dedicated = dedicatedPool(t, r) })
	if dedicated == "" {
		t.Fatal("the dedicated pool scenario failed; pause and tuning need its pool")
	}
	r.measure(t, &results, "pause", func(t *testing.T) { pause(t, r, dedicated) })
	r.measure(t, &results, "tuning", func(t *testing.T) { tuning(t, r, dedicated) })
	r.measure(t, &results, "preemption", func(t *testing.T) { preemption(t, r) })
	r.measure(t, &results, "chunked", func(t *testing.T) { chunked(t, r) })
}

func report(t *testing.T, r *rig, results []result) {
	var b strings.Builder
	fmt.Fprintf(&b, "rig start: %.1f s\n\n| scenario | wall time | peak memory (this test binary's processes) | result |\n| --- | --- | --- | --- |\n", r.started.Seconds())
	for _, res := range results {
		b.WriteString(res.String() + "\n")
	}
	t.Logf("end-to-end figures:\n%s", b.String())
	if path := os.Getenv("MPEGFLOW_E2E_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write MPEGFLOW_E2E_REPORT: %v", err)
		}
	}
}

// happyPath: three clips over REST to the shared pool → three Jobs made by
// KEDA → three encode processes → three completed jobs with outputs in S3,
// and no extra Job within a polling interval's slack.
func happyPath(t *testing.T, r *rig) {
	before := len(r.kubeJobs(t, "default"))
	var ids []string
	for i, size := range []string{"320x240", "480x270", "640x360"} {
		asset := r.clip(t, "happy-"+strconv.Itoa(i), 2, size)
		ids = append(ids, r.submit(t, asset, "default").ID)
	}
	r.waitJobs(t, jobTimeout, ids...)
	pods := map[string]bool{}
	for _, id := range ids {
		w := r.workers(t, id)
		if len(w) != 1 || !strings.HasPrefix(w[0], scaledJobName("default")+"-") {
			t.Errorf("job %s was claimed by %v, want one pod of %s", id, w, scaledJobName("default"))
		}
		for _, p := range w {
			pods[p] = true
		}
		r.verifyOutputs(t, id)
	}
	if len(pods) != 3 {
		t.Errorf("three jobs ran in %d distinct pods, want 3 (one Job per job)", len(pods))
	}
	r.steady(t, "default", before+3, 2*pollingInterval*time.Second+time.Second)
	for _, j := range r.kubeJobs(t, "default") {
		if j.Status.Failed != 0 {
			t.Errorf("Job %s failed: %+v", j.Name, j.Status)
		}
	}
}

// createPool creates a dedicated pool over REST and returns its id.
func (r *rig) createPool(t *testing.T, body map[string]any) string {
	t.Helper()
	var p client.Pool
	if code := r.rest(t, http.MethodPost, "/v1/pools", body, &p); code != http.StatusCreated {
		t.Fatalf("POST /v1/pools answered %d", code)
	}
	return p.ID
}

// rest calls the API with the owner's key and decodes the answer.
func (r *rig) rest(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(t.Context(), method, r.svc.api+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.svc.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Logf("%s %s answered %d: %s", method, path, resp.StatusCode, data)
	} else if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// dedicatedPool: a pool created over REST gets its ScaledJob from the
// operator; its job runs on its Jobs, and a shared-pool job never does.
func dedicatedPool(t *testing.T, r *rig) string {
	id := r.createPool(t, map[string]any{"name": "dedicated", "max_replicas": 3, "polling_interval_seconds": pollingInterval})
	r.waitScaledJob(t, id, time.Minute)
	asset := r.clip(t, "dedicated", 2, "320x240")
	mine := r.submit(t, asset, id)
	shared := r.submit(t, asset, "default")
	r.waitJobs(t, jobTimeout, mine.ID, shared.ID)
	if w := r.workers(t, mine.ID); len(w) != 1 || !strings.HasPrefix(w[0], scaledJobName(id)+"-") {
		t.Errorf("the dedicated pool's job was claimed by %v, want one pod of %s", w, scaledJobName(id))
	}
	if w := r.workers(t, shared.ID); len(w) != 1 || !strings.HasPrefix(w[0], scaledJobName("default")+"-") {
		t.Errorf("the shared pool's job was claimed by %v, want one pod of %s", w, scaledJobName("default"))
	}
	if n := len(r.kubeJobs(t, id)); n != 1 {
		t.Errorf("the dedicated pool has %d Jobs, want 1 (its own job only)", n)
	}
	r.verifyOutputs(t, mine.ID)
	return id
}

// pausedAnnotation is how the operator zeroes a ScaledJob (KEDA's CRD
// rejects maxReplicaCount 0).
const pausedAnnotation = "autoscaling.keda.sh/paused"

func (r *rig) waitPaused(t *testing.T, pool string, paused bool) {
	t.Helper()
	ctx := t.Context()
	deadline, cancel := contextWithTimeout(t, 2*parseDuration(t, operatorPeriod)+10*time.Second)
	defer cancel()
	err := poll(deadline, 200*time.Millisecond, func() (bool, error) {
		sj, err := r.dyn.Resource(scaledJobGVR).Namespace(namespace).Get(ctx, scaledJobName(pool), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return (sj.GetAnnotations()[pausedAnnotation] == "true") == paused, nil
	}, fmt.Sprintf("wait for ScaledJob %s paused=%v", scaledJobName(pool), paused))
	if err != nil {
		t.Fatal(err)
	}
}

// pause: pausing annotates the ScaledJob within a reconcile; new jobs wait
// with no Job created; resuming runs them.
func pause(t *testing.T, r *rig, pool string) {
	if code := r.rest(t, http.MethodPost, "/v1/pools/"+pool+"/pause", nil, nil); code != http.StatusOK {
		t.Fatalf("pause answered %d", code)
	}
	r.waitPaused(t, pool, true)
	before := len(r.kubeJobs(t, pool))
	asset := r.clip(t, "paused", 2, "320x240")
	a, b := r.submit(t, asset, pool), r.submit(t, asset, pool)
	r.steady(t, pool, before, 3*pollingInterval*time.Second)
	for _, id := range []string{a.ID, b.ID} {
		if j, err := r.api.GetJob(t.Context(), id); err != nil || j.Status != client.JobQueued {
			t.Fatalf("job %s of the paused pool: status %q (%v), want queued", id, j.Status, err)
		}
	}
	if code := r.rest(t, http.MethodPost, "/v1/pools/"+pool+"/resume", nil, nil); code != http.StatusOK {
		t.Fatalf("resume answered %d", code)
	}
	r.waitPaused(t, pool, false)
	r.waitJobs(t, jobTimeout, a.ID, b.ID)
	if n := len(r.kubeJobs(t, pool)); n != before+2 {
		t.Errorf("after resume the pool has %d Jobs, want %d", n, before+2)
	}
}

// tuning: changing max replicas while jobs run deletes no running Job.
func tuning(t *testing.T, r *rig, pool string) {
	asset := r.clip(t, "tuning", 20, "1280x720")
	a, b := r.submit(t, asset, pool), r.submit(t, asset, pool)
	r.waitStatus(t, a.ID, client.JobRunning, jobTimeout)
	r.waitStatus(t, b.ID, client.JobRunning, jobTimeout)
	running := map[string]string{} // Job name → uid
	for _, j := range r.kubeJobs(t, pool) {
		if j.Status.Active > 0 {
			running[j.Name] = string(j.UID)
		}
	}
	if len(running) < 2 {
		t.Fatalf("%d active Jobs while two jobs run, want 2\n%s", len(running), r.describe(t))
	}
	if code := r.rest(t, http.MethodPatch, "/v1/pools/"+pool, map[string]any{"max_replicas": 5}, nil); code != http.StatusOK {
		t.Fatalf("PATCH max_replicas answered %d", code)
	}
	deadline, cancel := contextWithTimeout(t, 2*parseDuration(t, operatorPeriod)+10*time.Second)
	defer cancel()
	err := poll(deadline, 200*time.Millisecond, func() (bool, error) {
		sj, err := r.dyn.Resource(scaledJobGVR).Namespace(namespace).Get(t.Context(), scaledJobName(pool), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n, _, _ := unstructured.NestedInt64(sj.Object, "spec", "maxReplicaCount")
		return n == 5, nil
	}, "wait for the ScaledJob's maxReplicaCount to become 5")
	if err != nil {
		t.Fatal(err)
	}
	r.waitJobs(t, jobTimeout, a.ID, b.ID)
	after := map[string]string{}
	for _, j := range r.kubeJobs(t, pool) {
		after[j.Name] = string(j.UID)
		if j.DeletionTimestamp != nil {
			t.Errorf("Job %s is being deleted after the tuning change", j.Name)
		}
	}
	for name, uid := range running {
		if after[name] != uid {
			t.Errorf("running Job %s was deleted by the tuning change", name)
		}
	}
	for _, id := range []string{a.ID, b.ID} {
		if w := r.workers(t, id); len(w) != 1 {
			t.Errorf("job %s was claimed %d times (%v), want once: its Job was interrupted", id, len(w), w)
		}
	}
}

// preemption: SIGTERM to a running encode requeues its job at once and it
// completes on a new Job; kill -9 is recovered after the lease.
func preemption(t *testing.T, r *rig) {
	asset := r.clip(t, "preempt", 20, "1280x720")

	// SIGTERM, as a spot reclaim or a drain delivers it.
	j := r.submit(t, asset, "default")
	pid, pod := r.encodeProcess(t, j.ID)
	sent := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM encode process %d: %v", pid, err)
	}
	requeued := r.waitLeft(t, j.ID, pod)
	if d := requeued.Sub(sent); d >= parseDuration(t, lease) {
		t.Errorf("after SIGTERM the job left pod %s in %s, not at once (the lease is %s)", pod, d, lease)
	}
	r.waitJobs(t, jobTimeout, j.ID)
	if w := r.workers(t, j.ID); len(w) != 2 || w[0] != pod || w[1] == pod {
		t.Errorf("after SIGTERM job %s was claimed by %v, want %s then a new pod", j.ID, w, pod)
	}
	r.verifyOutputs(t, j.ID)

	// kill -9: nothing tells the coordinator; the lease must lapse.
	k := r.submit(t, asset, "default")
	pid, pod = r.encodeProcess(t, k.ID)
	cur, err := r.api.GetJob(t.Context(), k.ID)
	if err != nil || cur.LeaseExpiresAt == nil {
		t.Fatalf("job %s has no lease while running (%v)", k.ID, err)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 encode process %d: %v", pid, err)
	}
	left := r.waitLeft(t, k.ID, pod)
	// The lease only grows while heartbeats run, so the one read before
	// the kill is a lower bound of when recovery may act.
	if left.Before(cur.LeaseExpiresAt.Add(-time.Second)) {
		t.Errorf("after kill -9 the job left pod %s at %s, before its lease lapsed at %s", pod, left.Format(time.RFC3339Nano), cur.LeaseExpiresAt.Format(time.RFC3339Nano))
	}
	if late := left.Sub(*cur.LeaseExpiresAt); late > parseDuration(t, lease)+parseDuration(t, recoveryPeriod)+10*time.Second {
		t.Errorf("after kill -9 the job left pod %s %s after its lease lapsed; Stale Job Recovery runs every %s", pod, late, recoveryPeriod)
	}
	r.waitJobs(t, jobTimeout, k.ID)
	if w := r.workers(t, k.ID); len(w) != 2 || w[0] != pod || w[1] == pod {
		t.Errorf("after kill -9 job %s was claimed by %v, want %s then a new pod", k.ID, w, pod)
	}
	t.Logf("kill -9: the job left pod %s %s after the kill", pod, left.Sub(killed).Round(time.Second))
	r.verifyOutputs(t, k.ID)
}

// encodeProcess waits until the job runs, and returns the pid of its
// encode process (the container id the process node reports) and the pod.
func (r *rig) encodeProcess(t *testing.T, id string) (int, string) {
	t.Helper()
	r.waitStatus(t, id, client.JobRunning, jobTimeout)
	w := r.workers(t, id)
	if len(w) == 0 {
		t.Fatalf("running job %s has no job.started event", id)
	}
	pod := w[len(w)-1]
	p := r.pod(t, pod)
	if len(p.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", pod)
	}
	cid := p.Status.ContainerStatuses[0].ContainerID
	pid, err := strconv.Atoi(strings.TrimPrefix(cid, "process://"))
	if err != nil {
		t.Fatalf("pod %s: container id %q is not process://PID", pod, cid)
	}
	return pid, pod
}

// waitLeft waits until the job is no longer running in pod (requeued,
// waiting for a retry, or claimed by another pod) and returns when.
func (r *rig) waitLeft(t *testing.T, id, pod string) time.Time {
	t.Helper()
	deadline, cancel := contextWithTimeout(t, 2*time.Minute)
	defer cancel()
	err := poll(deadline, 100*time.Millisecond, func() (bool, error) {
		j, err := r.api.GetJob(t.Context(), id)
		if err != nil {
			return false, err
		}
		if j.Status == client.JobFailed || j.Status == client.JobCancelled {
			return false, fmt.Errorf("job %s ended %s", id, j.Status)
		}
		return j.Status != client.JobRunning || deref(j.WorkerID) != pod, nil
	}, "wait for job "+id+" to leave pod "+pod)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.describe(t))
	}
	return time.Now()
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("parse duration %q: %v", s, err)
	}
	return d
}
