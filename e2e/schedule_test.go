//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mpegflow/mpegflow/client"
)

// TestScheduledPause runs one pause window end to end on the real rig
// (mpegflow serve with its Schedule Evaluator on the real clock, the
// operator, KEDA, the process node). Cron has no seconds, so the window is
// built around the clock: it started at the beginning of the current minute
// (Europe/Paris time) and ends at the next minute boundary at least 20 s
// away. The pool is created inside it, so the evaluator pauses it on its
// first look at the new windows (the start edge itself, a cron firing, is
// covered with an injected clock in the dispatcher's tests); the end edge
// is a real cron firing. While the window lasts the ScaledJob carries
// KEDA's paused annotation and a submitted job waits with no Job created;
// after the end edge the annotation goes and the job runs.
func TestScheduledPause(t *testing.T) {
	t.Parallel()
	r := startRig(t)
	asset := r.clip(t, "scheduled", 2, "320x240")
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start := now.Truncate(time.Minute)
	end := start.Add(time.Minute)
	if end.Sub(now) < 20*time.Second {
		end = end.Add(time.Minute)
	}
	spec := func(at time.Time) string {
		at = at.In(paris)
		return fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour())
	}
	created := time.Now()
	id := r.createPool(t, map[string]any{
		"name": "scheduled", "max_replicas": 2, "polling_interval_seconds": pollingInterval,
		"pause_windows": []any{map[string]any{"start": spec(start), "end": spec(end), "timezone": "Europe/Paris"}},
	})
	t.Logf("window %s–%s Europe/Paris (%s–%s UTC), %.1f s of it left at creation",
		spec(start), spec(end), start.UTC().Format(time.TimeOnly), end.UTC().Format(time.TimeOnly), end.Sub(created).Seconds())
	r.waitScaledJob(t, id, time.Minute)
	r.waitPaused(t, id, true)
	pausedAfter := time.Since(created)

	var p client.Pool
	if code := r.rest(t, http.MethodGet, "/v1/pools/"+id, nil, &p); code != http.StatusOK {
		t.Fatalf("GET pool answered %d", code)
	}
	if p.Status != "paused" || deref(p.PausedBy) != "schedule" {
		t.Fatalf("inside its window the pool is %s paused_by %v, want paused by schedule", p.Status, p.PausedBy)
	}
	if p.NextChange == nil || !p.NextChange.At.Equal(end) || p.NextChange.Action != "resume" {
		t.Fatalf("next_change %+v, want resume at %s", p.NextChange, end.UTC())
	}
	sj, err := r.dyn.Resource(scaledJobGVR).Namespace(namespace).Get(t.Context(), scaledJobName(id), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sj.GetAnnotations()["mpegflow.io/paused-by"]; got != "schedule" {
		t.Errorf("ScaledJob annotation mpegflow.io/paused-by = %q, want schedule", got)
	}

	job := r.submit(t, asset, id)
	if wait := time.Until(end) - 2*time.Second; wait > 0 {
		r.steady(t, id, 0, wait) // no Job while the window lasts
	}
	if j, err := r.api.GetJob(t.Context(), job.ID); err != nil || j.Status != client.JobQueued {
		t.Fatalf("job %s inside the window: status %q (%v), want queued", job.ID, j.Status, err)
	}

	r.waitPaused(t, id, false)
	resumedAfter := time.Since(end)
	r.waitStatus(t, job.ID, client.JobRunning, jobTimeout)
	runningAfter := time.Since(end)
	r.waitJobs(t, jobTimeout, job.ID)
	if code := r.rest(t, http.MethodGet, "/v1/pools/"+id, nil, &p); code != http.StatusOK || p.Status != "active" || p.PausedBy != nil {
		t.Errorf("after the window the pool is %s paused_by %v, want active, null", p.Status, p.PausedBy)
	}
	if n := len(r.kubeJobs(t, id)); n != 1 {
		t.Errorf("the pool has %d Jobs, want 1", n)
	}
	t.Logf("scheduled pause: ScaledJob paused %.1f s after the pool was created inside its window; "+
		"window end → paused annotation removed %.1f s, → job running %.1f s; window %.1f s",
		pausedAfter.Seconds(), resumedAfter.Seconds(), runningAfter.Seconds(), end.Sub(created).Seconds())
}
