package dispatcher

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestMetrics: request and outcome counters follow the calls made, and the
// fleet gauges read the cluster-wide state from Postgres and Redis, so an
// instance that served nothing reports the same values.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.start(Config{}), e.start(Config{})
	a.metrics.RegisterFleet(a.coord, slog.New(slog.DiscardHandler))
	b.metrics.RegisterFleet(b.coord, slog.New(slog.DiscardHandler))
	idle := e.pool("idle")
	_, err := e.db.Exec(t.Context(), `UPDATE worker_pools SET status = 'paused', paused_by = 'manual' WHERE id = $1`, idle.ID)
	require.NoError(t, err)
	w := e.worker(a.addr, store.DefaultPoolID)
	e.submit(store.DefaultPoolID, 6)

	for i := range 2 {
		require.NoError(t, w.complete(t.Context(), w.mustClaim(t, fmt.Sprintf("pod-%d", i))))
	}
	_, err = w.fail(t.Context(), w.mustClaim(t, "pod-2"), "unsupported codec", false)
	require.NoError(t, err)
	w.mustClaim(t, "pod-3") // stays running

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"claims", "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"}, 4},
		{"completes", "mpegflow_grpc_requests_total", map[string]string{"method": "Complete"}, 2},
		{"fails", "mpegflow_grpc_requests_total", map[string]string{"method": "Fail"}, 1},
		{"completed jobs", "mpegflow_jobs_total", map[string]string{"status": "completed"}, 2},
		{"failed jobs", "mpegflow_jobs_total", map[string]string{"status": "failed"}, 1},
		{"cancelled jobs", "mpegflow_jobs_total", map[string]string{"status": "cancelled"}, 0},
		{"queue depth", "mpegflow_queue_depth", map[string]string{"pool_id": "default"}, 2},
		{"jobs in flight", "mpegflow_jobs_in_flight", map[string]string{"pool_id": "default"}, 1},
		{"online workers", "mpegflow_worker_count", map[string]string{"pool_id": "default", "status": "online"}, 4},
		{"idle pool depth", "mpegflow_queue_depth", map[string]string{"pool_id": idle.ID}, 0},
		{"idle pool in flight", "mpegflow_jobs_in_flight", map[string]string{"pool_id": idle.ID}, 0},
		{"paused pool", "mpegflow_pool_paused", map[string]string{"pool_id": idle.ID}, 1},
		{"running pool", "mpegflow_pool_paused", map[string]string{"pool_id": "default"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.InDelta(t, tt.want, mustMetric(t, a.metrics.Registry, tt.metric, tt.labels), 0)
		})
	}

	t.Run("group commit is timed", func(t *testing.T) {
		t.Parallel()
		// One call at a time: each claim popped and claimed in a batch of
		// its own, and each completion went alone.
		for kind, calls := range map[string]uint64{"pop": 4, "claim": 4, "complete": 2} {
			labels := map[string]string{"kind": kind}
			batches, _ := histogramOf(t, a.metrics.Registry, "mpegflow_group_commit_batch_size", labels)
			waits, _ := histogramOf(t, a.metrics.Registry, "mpegflow_group_commit_wait_seconds", labels)
			runs, ran := histogramOf(t, a.metrics.Registry, "mpegflow_group_commit_run_seconds", labels)
			assert.Equal(t, calls, waits, "%s: a wait observed for each call", kind)
			assert.Equal(t, batches, runs, "%s: a run observed for each batch", kind)
			assert.Positive(t, ran, "%s: the batches took some time", kind)
		}
	})

	t.Run("fleet gauges are cluster-wide", func(t *testing.T) {
		t.Parallel()
		assert.InDelta(t, 2, mustMetric(t, b.metrics.Registry, "mpegflow_queue_depth", map[string]string{"pool_id": "default"}), 0)
		assert.InDelta(t, 1, mustMetric(t, b.metrics.Registry, "mpegflow_jobs_in_flight", map[string]string{"pool_id": "default"}), 0)
		assert.InDelta(t, 4, mustMetric(t, b.metrics.Registry, "mpegflow_worker_count", map[string]string{"pool_id": "default", "status": "online"}), 0)
		claims, _ := metricValue(t, b.metrics.Registry, "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"})
		assert.Zero(t, claims, "instance B served no claims")
	})
}

// TestDispatchAndCallDurations: a claim observes how long its job waited
// since it last became claimable (its row's updated_at or its pool's last
// resume, whichever is later, as the claim found them) by lane and kind, a
// queuer's clock ahead of the coordinator's counts 0, and every call is
// timed by method, a long poll's wait included. The coordinator runs on a
// fake clock that moves only when the test steps it.
func TestDispatchAndCallDurations(t *testing.T) {
	t.Parallel()
	e, in, fc, w := longPollInstance(t)
	queuedAt := func(id uuid.UUID, at time.Time) {
		_, err := e.db.Exec(t.Context(), `UPDATE jobs SET updated_at = $2 WHERE id = $1`, id, at)
		require.NoError(t, err)
	}
	// A pool's resume is when its queued jobs became claimable again.
	resumedAt := func(at *time.Time) {
		_, err := e.db.Exec(t.Context(), `UPDATE worker_pools SET resumed_at = $2 WHERE id = $1`, store.DefaultPoolID, at)
		require.NoError(t, err)
	}
	live := map[string]string{"lane": "live", "kind": "job"}
	ids := e.submit(store.DefaultPoolID, 4)
	queuedAt(ids[0], fc.Now().Add(-90*time.Second))
	queuedAt(ids[1], fc.Now().Add(5*time.Second)) // its queuer's clock ahead of the coordinator's
	for i, id := range ids[:2] {
		job := w.mustClaim(t, fmt.Sprintf("pod-%d", i))
		require.Equal(t, id.String(), job.GetId(), "claimed in submission order")
	}
	n, sum := histogramOf(t, in.metrics.Registry, "mpegflow_job_dispatch_duration_seconds", live)
	assert.Equal(t, uint64(2), n, "one observation a claim that hands out a job")
	assert.InDelta(t, 90, sum, 1e-6, "90 s for the first, 0 (not -5) for the second")

	queuedAt(ids[2], fc.Now().Add(-600*time.Second))
	queuedAt(ids[3], fc.Now().Add(-20*time.Second))
	resumedAt(new(fc.Now().Add(-30 * time.Second)))
	w.mustClaim(t, "pod-resumed-1")
	w.mustClaim(t, "pod-resumed-2")
	n, sum = histogramOf(t, in.metrics.Registry, "mpegflow_job_dispatch_duration_seconds", live)
	assert.Equal(t, uint64(4), n)
	assert.InDelta(t, 90+30+20, sum, 1e-6, "queued 600 s ago in a pool resumed 30 s ago: 30 s; queued after the resume: its own 20 s")
	for _, other := range []map[string]string{{"lane": "backfill", "kind": "job"}, {"lane": "live", "kind": "task"}} {
		n, _ = histogramOf(t, in.metrics.Registry, "mpegflow_job_dispatch_duration_seconds", other)
		assert.Zero(t, n, "%v", other)
	}

	got := w.longPoll(t, fc, "pod-2")
	fc.Step(200 * time.Millisecond) // a poll: the lane is still empty
	require.Eventually(t, fc.HasWaiters, 10*time.Second, time.Millisecond)
	fc.Step(5 * time.Second) // past the claim's 5 s wait
	r := <-got
	require.NoError(t, r.err)
	require.Nil(t, r.job, "nothing to claim")
	n, sum = histogramOf(t, in.metrics.Registry, "mpegflow_grpc_request_duration_seconds", map[string]string{"method": "Claim"})
	assert.Equal(t, uint64(5), n, "every claim timed")
	assert.InDelta(t, 5.2, sum, 1e-6, "the quick claims took no time on the fake clock; the long poll its 5.2 s")
	n, _ = histogramOf(t, in.metrics.Registry, "mpegflow_job_dispatch_duration_seconds", live)
	assert.Equal(t, uint64(4), n, "a claim that hands out nothing observes no dispatch")
}
