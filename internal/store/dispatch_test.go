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
