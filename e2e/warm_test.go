//go:build e2e && warmbench

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mpegflow/mpegflow/client"
)

// TestWarmPoolPodStarts measures what warm_idle_seconds buys a pre-warmed
// pool on the real control plane and KEDA: how many encode pods KEDA starts
// per minute to keep ten warm, with idle pods exiting after 20 s (what every
// pod did before warm pools) and after 300 s, and how long a job submitted
// to the warm pool waits for a pod to claim it. It is a measurement for
// docs/benchmarks.md (make bench-warm, about three minutes), built only
// with the warmbench tag so that make test-e2e does not spend the time; it
// still fails when a pool never gets warm or its job is never claimed.
func TestWarmPoolPodStarts(t *testing.T) {
	r := startRig(t)
	const warm, window = 10, time.Minute
	asset := r.clip(t, "warm", 1, "320x240")
	for _, idle := range []int{20, 300} {
		id := r.createPool(t, map[string]any{
			"name": fmt.Sprintf("warm-%d", idle), "min_replicas": warm, "max_replicas": warm + 2,
			"warm_idle_seconds": idle, "polling_interval_seconds": pollingInterval,
			"resources": map[string]any{"cpu_request": "10m", "memory_request": "32Mi"},
		})
		r.waitScaledJob(t, id, time.Minute)
		r.waitActiveJobs(t, id, warm, 3*time.Minute)
		starts := r.countJobStarts(t, id, window)
		began := time.Now()
		job := r.submit(t, asset, id)
		r.waitStatus(t, job.ID, client.JobRunning, 2*time.Minute)
		claimed := time.Since(began)
		r.waitJobs(t, jobTimeout, job.ID)
		if code := r.rest(t, http.MethodPost, "/v1/pools/"+id+"/pause", nil, nil); code != http.StatusOK {
			t.Fatalf("pause pool %s answered %d", id, code)
		}
		t.Logf("warm pool of %d, warm_idle_seconds %d: %d pod starts in %s; submit → running %.2f s",
			warm, idle, starts, window, claimed.Seconds())
	}
}

// waitActiveJobs waits until pool has at least n Jobs with a running pod.
func (r *rig) waitActiveJobs(t *testing.T, pool string, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, timeout)
	defer cancel()
	err := poll(ctx, 500*time.Millisecond, func() (bool, error) {
		active := 0
		for _, j := range r.kubeJobs(t, pool) {
			active += int(j.Status.Active)
		}
		return active >= n, nil
	}, fmt.Sprintf("wait for %d active Jobs of pool %s", n, pool))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.describe(t))
	}
}

// countJobStarts counts the Jobs KEDA creates for pool during window. It
// watches rather than lists: KEDA keeps only a few finished Jobs.
func (r *rig) countJobStarts(t *testing.T, pool string, window time.Duration) int {
	t.Helper()
	l, err := r.cs.BatchV1().Jobs(namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "scaledjob.keda.sh/name=" + scaledJobName(pool)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(t, window)
	defer cancel()
	w, err := r.cs.BatchV1().Jobs(namespace).Watch(ctx, metav1.ListOptions{
		LabelSelector: "scaledjob.keda.sh/name=" + scaledJobName(pool), ResourceVersion: l.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	started := 0
	for {
		select {
		case <-ctx.Done():
			return started
		case ev, ok := <-w.ResultChan():
			if !ok {
				return started
			}
			if _, isJob := ev.Object.(*batchv1.Job); isJob && ev.Type == watch.Added {
				started++
			}
		}
	}
}
