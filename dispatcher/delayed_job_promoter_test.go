package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		jitter  float64
		attempt int
		want    time.Duration
	}{
		{"first retry, lowest jitter", 0, 1, 8 * time.Second},
		{"first retry, no jitter", 0.5, 1, 10 * time.Second},
		{"second retry doubles", 0.5, 2, 20 * time.Second},
		{"third retry doubles again", 0.75, 3, 44 * time.Second},
		{"capped at the maximum", 0.5, 20, 15 * time.Minute},
		{"cap applies before jitter", 0.75, 30, 16*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Secret: testSecret, BackoffBase: 10 * time.Second, BackoffMax: 15 * time.Minute, Jitter: fixedJitter(tt.jitter)}
			require.NoError(t, cfg.defaults())
			assert.Equal(t, tt.want, cfg.Backoff(tt.attempt))
		})
	}
}

// TestRetryBackoffSchedule fails attempts 1 to 3 retryably under an injected
// clock: each retry is due at now + base·2^(n−1)·jitter factor, the promoter
// leaves it alone a second before and promotes it at that moment; attempt 4
// of 4 fails for good.
func TestRetryBackoffSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	// Jitter 0.75 gives the factor 0.8 + 0.4·0.75 = 1.1.
	in := e.start(Config{Clock: fc, BackoffBase: 10 * time.Second, BackoffMax: 15 * time.Minute, Jitter: fixedJitter(0.75)})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.create(store.DefaultPoolID, 1, 4)[0]
	e.push(store.DefaultPoolID, id)

	schedule := []time.Duration{11 * time.Second, 22 * time.Second, 44 * time.Second}
	for i, wait := range schedule {
		attempt := i + 1
		job := w.mustClaim(t, fmt.Sprintf("pod-%d", attempt))
		require.EqualValues(t, attempt, job.GetAttempt())
		failedAt := fc.Now()
		res, err := w.fail(t.Context(), job, "ffmpeg exited with status 1", true)
		require.NoError(t, err)
		require.Equal(t, coordinatorv1.OutcomeRetryScheduled, res.GetOutcome(), "attempt %d", attempt)
		assert.EqualValues(t, attempt, res.GetAttempts())
		due := failedAt.Add(wait)
		assert.Equal(t, due.UnixMilli(), res.GetRetryAtUnixMs(), "attempt %d retries after %s", attempt, wait)
		j := e.job(id)
		require.Equal(t, store.JobRetryWait, j.Status)
		require.NotNil(t, j.RunAfter)
		assert.True(t, due.Equal(*j.RunAfter), "attempt %d: run_after %s, want %s", attempt, j.RunAfter, due)

		fc.Step(wait - time.Second)
		n, err := in.services.PromoteDelayed(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "attempt %d: a second before due nothing moves", attempt)
		assert.Equal(t, store.JobRetryWait, e.job(id).Status)
		assert.Zero(t, e.queueLen(store.DefaultPoolID))

		fc.Step(time.Second)
		n, err = in.services.PromoteDelayed(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "attempt %d: promoted when due", attempt)
		assert.Equal(t, store.JobQueued, e.job(id).Status)
		assert.EqualValues(t, 1, e.queueLen(store.DefaultPoolID))
	}

	last := w.mustClaim(t, "pod-4")
	require.EqualValues(t, 4, last.GetAttempt())
	res, err := w.fail(t.Context(), last, "ffmpeg exited with status 1", true)
	require.NoError(t, err)
	assert.Equal(t, coordinatorv1.OutcomeFailed, res.GetOutcome())
	assert.Zero(t, res.GetRetryAtUnixMs())
	j := e.job(id)
	assert.Equal(t, store.JobFailed, j.Status)
	require.NotNil(t, j.Error)
	assert.Equal(t, "ffmpeg exited with status 1 (gave up after 4 of 4 attempts)", *j.Error)
}

// TestPromoteDelayedBeforeFractionalDue: a retry due at a fraction of a
// second must survive a promoter round that runs in that same second but
// before the due time, and be promoted by the next round. (The delayed set
// scores whole seconds; taking it early would drop it from the set while
// Postgres refuses to promote it, leaving it to the slow reconciler.)
func TestPromoteDelayedBeforeFractionalDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	// Jitter 0.3: factor 0.92, so the retry is due 9.2 s after the failure.
	in := e.start(Config{Clock: fc, BackoffBase: 10 * time.Second, Jitter: fixedJitter(0.3)})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]
	res, err := w.fail(t.Context(), w.mustClaim(t, "pod-1"), "connection reset", true)
	require.NoError(t, err)
	require.Equal(t, coordinatorv1.OutcomeRetryScheduled, res.GetOutcome())

	fc.Step(9100 * time.Millisecond)
	n, err := in.services.PromoteDelayed(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "9.1 s: not due")
	_, err = e.rdb.ZScore(ctx, e.queue.Keys().Delayed(), id.String()).Result()
	assert.NoError(t, err, "the retry is still in the delayed set")

	fc.Step(900 * time.Millisecond)
	n, err = in.services.PromoteDelayed(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "10 s: promoted")
	assert.Equal(t, store.JobQueued, e.job(id).Status)
	assert.EqualValues(t, 1, e.queueLen(store.DefaultPoolID))
}
