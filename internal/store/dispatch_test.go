package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestCompleteJobChecksTheClaimAgain: the coordinator checks a job's
// outputs before CompleteJob opens its transaction, so the transaction
// checks again that the caller still holds the job running. A former holder
// (its attempt handed back and the job claimed anew meanwhile) is refused
// and changes nothing; the holder completes; a second completion is refused.
func TestCompleteJobChecksTheClaimAgain(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	j := createJob(t, s, urlJob(b.Org.ID))
	now := time.Now()
	tokenA, tokenB := []byte("claim-token-of-pod-a"), []byte("claim-token-of-pod-b")
	outputs := json.RawMessage(`[{"name": "720p.mp4", "key": "orgs/x/jobs/y/outputs/720p.mp4"}]`)
	usage := store.Usage{EncodeSeconds: 3, Accelerator: "cpu"}

	_, err := s.ClaimJob(ctx, j.ID, store.DefaultPoolID, apiv1.LaneLive, "pod-a", tokenA, now, now.Add(time.Minute))
	require.NoError(t, err)
	// Here the coordinator checked pod-a's outputs; meanwhile pod-a was
	// preempted and pod-b claimed the job.
	_, outcome, err := s.FailJob(ctx, j.ID, store.DefaultPoolID, tokenA, "preempted", true, true,
		store.FailPolicy{Now: now, Backoff: func(int) time.Duration { return time.Second }})
	require.NoError(t, err)
	require.Equal(t, store.OutcomeRequeued, outcome)
	_, err = s.ClaimJob(ctx, j.ID, store.DefaultPoolID, apiv1.LaneLive, "pod-b", tokenB, now, now.Add(time.Minute))
	require.NoError(t, err)

	_, err = s.CompleteJob(ctx, j.ID, store.DefaultPoolID, tokenA, outputs, usage, now)
	require.ErrorIs(t, err, store.ErrClaimToken, "the former holder")
	got, err := s.GetJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobRunning, got.Status, "pod-b still runs it")
	assert.JSONEq(t, `[]`, string(got.Outputs), "no outputs recorded")

	_, err = s.CompleteJob(ctx, j.ID, "another-pool", tokenB, outputs, usage, now)
	require.ErrorIs(t, err, store.ErrNotFound, "a job of another pool does not exist for the caller")

	done, err := s.CompleteJob(ctx, j.ID, store.DefaultPoolID, tokenB, outputs, usage, now)
	require.NoError(t, err)
	assert.Equal(t, store.JobCompleted, done.Status)
	assert.JSONEq(t, string(outputs), string(done.Outputs))

	_, err = s.CompleteJob(ctx, j.ID, store.DefaultPoolID, tokenB, outputs, usage, now)
	var nr *store.NotRunningError
	require.ErrorAs(t, err, &nr, "completing twice")
	assert.Equal(t, store.JobCompleted, nr.Status)
}

// TestCompleteBatch: one completion statement answers each request of a
// batch as CompleteJob answers it alone — the holder's completion with its
// outputs, usage record and worker cleared; a former holder's token
// refused; a finished job not running; another pool's job not found —
// without one row's outcome touching another's.
func TestCompleteBatch(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	now := time.Now().UTC()
	outputs := json.RawMessage(`[{"name": "720p.mp4", "key": "orgs/x/jobs/y/outputs/720p.mp4"}]`)
	usage := store.Usage{EncodeSeconds: 3, Accelerator: "cpu"}

	held := func(pod string) (store.Job, []byte) {
		j := createJob(t, s, urlJob(b.Org.ID))
		tok := []byte("token-of-" + pod)
		_, err := s.ClaimForWorker(ctx, j.ID, store.Worker{ID: pod, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}, tok, now, now.Add(time.Minute))
		require.NoError(t, err)
		return j, tok
	}
	completing, tokC := held("pod-c")
	stolen, _ := held("pod-s")
	finished, tokF := held("pod-f")
	_, err := s.CompleteJob(ctx, finished.ID, store.DefaultPoolID, tokF, outputs, usage, now)
	require.NoError(t, err)
	elsewhere, tokE := held("pod-e")
	also, tokA := held("pod-a")

	req := func(j store.Job, pool string, tok []byte) store.CompleteRequest {
		return store.CompleteRequest{JobID: j.ID, PoolID: pool, TokenHash: tok, Outputs: outputs, Usage: usage, Now: now}
	}
	res, err := s.CompleteBatch(ctx, []store.CompleteRequest{
		req(completing, store.DefaultPoolID, tokC),
		req(stolen, store.DefaultPoolID, []byte("a former holder's token")),
		req(finished, store.DefaultPoolID, tokF),
		req(elsewhere, "another-pool", tokE),
		req(also, store.DefaultPoolID, tokA),
	})
	require.NoError(t, err)
	require.Len(t, res, 5)

	for i, j := range map[int]store.Job{0: completing, 4: also} {
		require.NoError(t, res[i].Err, "completion %d", i)
		assert.Equal(t, j.ID, res[i].Job.ID, "completion %d answers its own job", i)
		assert.Equal(t, store.JobCompleted, res[i].Job.Status)
		assert.JSONEq(t, string(outputs), string(res[i].Job.Outputs))
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM usage_records WHERE job_id = $1 AND status = 'completed' AND encode_seconds = 3`, j.ID),
			"completion %d recorded its usage", i)
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.completed'`, j.ID))
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers w JOIN jobs j ON j.worker_id = w.id WHERE j.id = $1 AND w.current_job_id IS NULL`, j.ID),
			"completion %d cleared its worker's current job", i)
	}
	require.ErrorIs(t, res[1].Err, store.ErrClaimToken, "a former holder")
	var nr *store.NotRunningError
	require.ErrorAs(t, res[2].Err, &nr, "completing twice")
	assert.Equal(t, store.JobCompleted, nr.Status)
	require.ErrorIs(t, res[3].Err, store.ErrNotFound, "a job of another pool does not exist for the caller")
	for _, j := range []store.Job{stolen, elsewhere} {
		got, err := s.GetJob(ctx, b.Org.ID, j.ID)
		require.NoError(t, err)
		assert.Equal(t, store.JobRunning, got.Status, "a refused completion leaves its job running")
		assert.Zero(t, count(t, db, `SELECT count(*) FROM usage_records WHERE job_id = $1`, j.ID))
	}
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.completed'`, finished.ID),
		"the finished job's one completion")
}
