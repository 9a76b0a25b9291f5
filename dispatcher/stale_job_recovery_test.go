package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestSilentWorkerJobRetriedByAnother: a worker stops heartbeating; once
// its lease lapses Stale Job Recovery schedules a retry, the promoter puts
// it back on the list when the backoff is over, and a second worker runs
// attempt 2 to completion. The silent worker's claim token no longer works.
func TestSilentWorkerJobRetriedByAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc, Lease: time.Minute, BackoffBase: 10 * time.Second, Jitter: fixedJitter(0.5)})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]

	first := w.mustClaim(t, "pod-a")
	require.EqualValues(t, 1, first.GetAttempt())
	_, err := w.heartbeat(t.Context(), first, 0.3)
	require.NoError(t, err)

	fc.Step(59 * time.Second)
	n, err := in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "the lease has not lapsed yet")
	assert.Equal(t, store.JobRunning, e.job(id).Status)

	fc.Step(2 * time.Second)
	recoveredAt := fc.Now()
	n, err = in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	j := e.job(id)
	require.Equal(t, store.JobRetryWait, j.Status)
	require.NotNil(t, j.Error)
	assert.Contains(t, *j.Error, "pod-a")
	assert.Contains(t, *j.Error, "lease")
	require.NotNil(t, j.RunAfter)
	assert.WithinDuration(t, recoveredAt.Add(10*time.Second), *j.RunAfter, time.Millisecond, "retry after base backoff (jitter factor 1.0)")
	assert.Nil(t, j.WorkerID)

	n, err = in.services.PromoteDelayed(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "not due yet")
	assert.Zero(t, e.queueLen(store.DefaultPoolID))

	fc.Step(10 * time.Second)
	n, err = in.services.PromoteDelayed(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, store.JobQueued, e.job(id).Status)
	assert.EqualValues(t, 1, e.queueLen(store.DefaultPoolID))

	second := w.mustClaim(t, "pod-b")
	assert.Equal(t, id.String(), second.GetId())
	assert.EqualValues(t, 2, second.GetAttempt())

	// The silent worker wakes up: its claim is gone.
	_, err = w.heartbeat(t.Context(), first, 0.9)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "old claim token heartbeat: %v", err)
	assert.Equal(t, codes.PermissionDenied, status.Code(w.complete(t.Context(), first)))

	require.NoError(t, w.complete(t.Context(), second))
	j = e.job(id)
	assert.Equal(t, store.JobCompleted, j.Status)
	assert.Equal(t, "pod-b", *j.WorkerID)
	assert.Equal(t, 2, j.Attempts)
}

// TestSilentWorkerLastAttemptFails: when the lapsed attempt was the last,
// the job fails for good with an error naming the worker and the lease.
func TestSilentWorkerLastAttemptFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc, Lease: time.Minute})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.create(store.DefaultPoolID, 1, 1)[0]
	e.push(store.DefaultPoolID, id)

	job := w.mustClaim(t, "pod-silent")
	require.EqualValues(t, 1, job.GetMaxAttempts())
	leaseEnd := time.UnixMilli(job.GetLeaseExpiresUnixMs())
	fc.Step(time.Minute + time.Second)
	n, err := in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	j := e.job(id)
	assert.Equal(t, store.JobFailed, j.Status)
	require.NotNil(t, j.Error)
	assert.Equal(t, fmt.Sprintf("worker pod-silent stopped heartbeating; its lease expired at %s (gave up after 1 of 1 attempts)",
		leaseEnd.UTC().Format(time.RFC3339)), *j.Error)
	assert.NotNil(t, j.FinishedAt)
	assert.InDelta(t, 1, mustMetric(t, in.metrics.Registry, "mpegflow_jobs_total", map[string]string{"status": "failed"}), 0)

	n, err = in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a failed job is not recovered again")
	n, err = in.services.PromoteDelayed(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Zero(t, e.queueLen(store.DefaultPoolID))
}

// TestStaleJobRecoveryOnTwoReplicas runs Stale Job Recovery on both
// instances at once over 50 lapsed leases, in small batches: every job
// moves exactly once (one job.retry_scheduled event, one delayed entry).
func TestStaleJobRecoveryOnTwoReplicas(t *testing.T) {
	t.Parallel()
	const jobs = 50
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	cfg := Config{Clock: fc, Lease: time.Minute}
	instances := []*instance{
		e.start(cfg).withServices(ServicesConfig{Batch: 4}),
		e.start(cfg).withServices(ServicesConfig{Batch: 4}),
	}
	ids := e.create(store.DefaultPoolID, jobs, 3)
	e.push(store.DefaultPoolID, ids...)
	w := e.worker(instances[0].addr, store.DefaultPoolID)
	for i := range jobs {
		w.mustClaim(t, fmt.Sprintf("pod-%d", i))
	}
	fc.Step(2 * time.Minute)

	start := make(chan struct{})
	moved := make([]int, len(instances))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range instances {
		g.Go(func() error {
			<-start
			for {
				n, err := in.services.RecoverStaleJobs(gctx)
				if err != nil || n == 0 {
					return err
				}
				moved[i] += n
			}
		})
	}
	close(start)
	require.NoError(t, g.Wait())
	// A replica stops when a round finds nothing unlocked; one more round
	// picks up anything both skipped.
	n, err := instances[0].services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	t.Logf("replica rounds moved %v, final round %d", moved, n)
	assert.Equal(t, jobs, moved[0]+moved[1]+n, "every stale job moved once in total")

	rows, err := e.db.Query(ctx, `SELECT j.id, j.status, count(ev.id) FROM jobs j
		LEFT JOIN job_events ev ON ev.job_id = j.id AND ev.type = 'job.retry_scheduled'
		GROUP BY j.id, j.status`)
	require.NoError(t, err)
	seen := 0
	for rows.Next() {
		var (
			id     uuid.UUID
			status string
			events int
		)
		require.NoError(t, rows.Scan(&id, &status, &events))
		assert.Equal(t, store.JobRetryWait, status, "job %s", id)
		assert.Equal(t, 1, events, "job %s has one job.retry_scheduled event", id)
		seen++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, jobs, seen)
	delayed, err := e.rdb.ZCard(ctx, e.queue.Keys().Delayed()).Result()
	require.NoError(t, err)
	assert.EqualValues(t, jobs, delayed, "one delayed entry per job")
}
