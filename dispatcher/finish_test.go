package dispatcher

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestFailOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		msg          string
		retryable    bool
		wantOutcome  string
		wantStatus   string
		wantAttempts int
		wantOnList   bool
		wantDelayed  bool
		wantError    string
	}{
		{
			name: "preempted requeues at once without using an attempt", msg: coordinatorv1.PreemptedError, retryable: true,
			wantOutcome: coordinatorv1.OutcomeRequeued, wantStatus: store.JobQueued, wantAttempts: 0, wantOnList: true, wantError: coordinatorv1.PreemptedError,
		},
		{
			name: "retryable schedules a retry", msg: "input host unreachable", retryable: true,
			wantOutcome: coordinatorv1.OutcomeRetryScheduled, wantStatus: store.JobRetryWait, wantAttempts: 1, wantDelayed: true, wantError: "input host unreachable",
		},
		{
			name: "non-retryable fails at once", msg: "unsupported codec", retryable: false,
			wantOutcome: coordinatorv1.OutcomeFailed, wantStatus: store.JobFailed, wantAttempts: 1, wantError: "unsupported codec",
		},
		{
			name: "preempted but not retryable fails", msg: coordinatorv1.PreemptedError, retryable: false,
			wantOutcome: coordinatorv1.OutcomeFailed, wantStatus: store.JobFailed, wantAttempts: 1, wantError: coordinatorv1.PreemptedError,
		}, {
			name: "an error with NUL is stored as text", msg: "ffmpeg: title \x00 in metadata", retryable: false,
			wantOutcome: coordinatorv1.OutcomeFailed, wantStatus: store.JobFailed, wantAttempts: 1, wantError: "ffmpeg: title \uFFFD in metadata",
		},
		{
			name: "a long error is cut between characters", msg: strings.Repeat("a", 3999) + "é and more", retryable: false,
			wantOutcome: coordinatorv1.OutcomeFailed, wantStatus: store.JobFailed, wantAttempts: 1, wantError: strings.Repeat("a", 3999) + "…",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			fc := newFakeClock()
			in := e.start(Config{Clock: fc})
			w := e.worker(in.addr, store.DefaultPoolID)
			id := e.submit(store.DefaultPoolID, 1)[0]
			job := w.mustClaim(t, "pod-1")

			res, err := w.fail(t.Context(), job, tt.msg, tt.retryable)
			require.NoError(t, err)
			assert.Equal(t, tt.wantOutcome, res.GetOutcome())
			assert.EqualValues(t, tt.wantAttempts, res.GetAttempts())
			j := e.job(id)
			assert.Equal(t, tt.wantStatus, j.Status)
			assert.Equal(t, tt.wantAttempts, j.Attempts)
			require.NotNil(t, j.Error)
			assert.Equal(t, tt.wantError, *j.Error)
			members, err := e.queue.Members(ctx, store.DefaultPoolID, "live")
			require.NoError(t, err)
			assert.Equal(t, tt.wantOnList, slices.Contains(members, id.String()), "on the list: %v", members)
			_, err = e.rdb.ZScore(ctx, e.queue.Keys().Delayed(), id.String()).Result()
			assert.Equal(t, tt.wantDelayed, err == nil, "in the delayed set (%v)", err)
			if !tt.wantDelayed {
				assert.ErrorIs(t, err, redis.Nil)
			}
			failed := mustMetric(t, in.metrics.Registry, "mpegflow_jobs_total", map[string]string{"status": "failed"})
			assert.InDelta(t, map[bool]float64{true: 1, false: 0}[tt.wantStatus == store.JobFailed], failed, 0)

			// The attempt is over for the worker whatever the outcome: its
			// claim token was withdrawn.
			_, err = w.heartbeat(t.Context(), job, 0.5)
			assert.Equal(t, codes.PermissionDenied, status.Code(err), "heartbeat after fail: %v", err)

			if tt.wantOutcome == coordinatorv1.OutcomeRequeued {
				again := w.mustClaim(t, "pod-2")
				assert.Equal(t, id.String(), again.GetId())
				assert.EqualValues(t, 1, again.GetAttempt(), "a preemption gives its attempt back")
			}
		})
	}
}

// TestCancelReachesHeartbeatingWorker: a job cancelled while running is
// answered cancel=true at the worker's next heartbeat; the worker can then
// neither complete nor fail it, and Stale Job Recovery leaves it alone.
func TestCancelReachesHeartbeatingWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc, Lease: time.Minute})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]
	job := w.mustClaim(t, "pod-1")

	hb, err := w.heartbeat(t.Context(), job, 0.2)
	require.NoError(t, err)
	require.False(t, hb.GetCancel())
	assert.Equal(t, fc.Now().Add(time.Minute).UnixMilli(), hb.GetLeaseExpiresUnixMs())

	_, err = e.store.CancelJob(ctx, e.org.ID, id)
	require.NoError(t, err)
	hb, err = w.heartbeat(t.Context(), job, 0.3)
	require.NoError(t, err)
	assert.True(t, hb.GetCancel(), "the next heartbeat tells the worker to stop")

	err = w.complete(t.Context(), job)
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "complete after cancel: %v", err)
	_, err = w.fail(t.Context(), job, "stopped", true)
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "fail after cancel: %v", err)
	assert.Equal(t, store.JobCancelled, e.job(id).Status)

	fc.Step(2 * time.Minute)
	n, err := in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a cancelled job has no lease to recover")
	assert.Equal(t, store.JobCancelled, e.job(id).Status)
}
