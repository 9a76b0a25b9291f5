package dispatcher

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// completeThenClaim makes a CompleteThenClaim call with whatever metadata
// ctx carries and reads it to its end: the messages it answered, and its
// error (nil when it ended well).
func completeThenClaim(ctx context.Context, client coordinatorv1.CoordinatorClient, req *coordinatorv1.CompleteRequest) ([]*coordinatorv1.CompleteResponse, error) {
	stream, err := client.CompleteThenClaim(ctx, req)
	if err != nil {
		return nil, err
	}
	var msgs []*coordinatorv1.CompleteResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

// openThenClaim starts pod's CompleteThenClaim of held, its next claim
// waiting up to waitMs, and reads the first message: the completion's.
func (r *nextRig) openThenClaim(ctx context.Context, t *testing.T, held *coordinatorv1.Job, pod string, waitMs int32) (coordinatorv1.Coordinator_CompleteThenClaimClient, *coordinatorv1.CompleteResponse) {
	t.Helper()
	stream, err := r.w.client.CompleteThenClaim(r.w.ctx(ctx, held.GetClaimToken()), &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: pod, WaitMs: waitMs},
	})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, store.JobCompleted, r.e.job(uuid.MustParse(held.GetId())).Status, "the first message answers the completion, committed")
	return stream, first
}

// TestCompleteThenClaimWaitsForWork: with the lane empty, the first
// message answers the completion alone (the job completed), and the call
// goes on waiting as the pod's Claim would; a job pushed meanwhile is the
// second message's, claimed for the pod, and the call ends.
func TestCompleteThenClaimWaitsForWork(t *testing.T) {
	r := newNextRig(t, "then-claim", 2)
	r.e.push(r.pool, r.ids[0])
	held := r.w.mustClaim(t, "pod-a")

	stream, first := r.openThenClaim(t.Context(), t, held, "pod-a", 30_000)
	assert.Nil(t, first.GetNext().GetJob(), "nothing was queued while the completion committed")
	assert.Empty(t, first.GetNextError())

	r.e.push(r.pool, r.ids[1])
	second, err := stream.Recv()
	require.NoError(t, err)
	next := second.GetNext().GetJob()
	require.NotNil(t, next, "the job pushed while the call waited: %v", second)
	assert.Equal(t, r.ids[1].String(), next.GetId())
	j := r.e.job(r.ids[1])
	assert.Equal(t, store.JobRunning, j.Status)
	require.NotNil(t, j.WorkerID)
	assert.Equal(t, "pod-a", *j.WorkerID)
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF, "two messages, then the call ends")

	require.NoError(t, r.w.complete(t.Context(), next), "the claim token is the pod's")
}

// TestCompleteThenClaimAnswersOnceWithWork: a job queued when the call
// arrives is claimed while the completion commits and comes with the first
// message, which ends the call.
func TestCompleteThenClaimAnswersOnceWithWork(t *testing.T) {
	r := newNextRig(t, "then-claim-queued", 2)
	r.e.push(r.pool, r.ids[0], r.ids[1])
	held := r.w.mustClaim(t, "pod-a")

	msgs, err := completeThenClaim(r.w.ctx(t.Context(), held.GetClaimToken()), r.w.client, &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: "pod-a", WaitMs: 30_000},
	})
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, r.ids[1].String(), msgs[0].GetNext().GetJob().GetId())
	assert.Equal(t, store.JobCompleted, r.e.job(r.ids[0]).Status)
	assert.Equal(t, store.JobRunning, r.e.job(r.ids[1]).Status)
}

// TestCompleteThenClaimWaitEnds: with no work for the whole wait, the
// second message answers no job and the pod's worker is registered
// as a Claim that found nothing registers it (online).
func TestCompleteThenClaimWaitEnds(t *testing.T) {
	r := newNextRig(t, "then-claim-idle", 1)
	r.e.push(r.pool, r.ids[0])
	held := r.w.mustClaim(t, "pod-a")
	_, err := r.e.db.Exec(t.Context(), `DELETE FROM workers WHERE id = 'pod-a'`)
	require.NoError(t, err)

	msgs, err := completeThenClaim(r.w.ctx(t.Context(), held.GetClaimToken()), r.w.client, &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: "pod-a", WaitMs: 200},
	})
	require.NoError(t, err)
	require.Len(t, msgs, 2, "the completion's answer, then the claim's")
	require.NotNil(t, msgs[1].GetNext(), "the claim was answered")
	assert.Nil(t, msgs[1].GetNext().GetJob())
	assert.Equal(t, store.JobCompleted, r.e.job(r.ids[0]).Status)
	var status string
	require.NoError(t, r.e.db.QueryRow(t.Context(), `SELECT status FROM workers WHERE id = 'pod-a'`).Scan(&status), "the waiting claim registered the pod")
	assert.Equal(t, store.WorkerOnline, status)
}

// TestCompleteThenClaimCancelledWhileWaiting: a pod that leaves while its
// call waits for its next job (SIGTERM) has its completion recorded, takes
// nothing, and a job pushed after it left goes to another pod.
func TestCompleteThenClaimCancelledWhileWaiting(t *testing.T) {
	r := newNextRig(t, "then-claim-gone", 2)
	r.e.push(r.pool, r.ids[0])
	held := r.w.mustClaim(t, "pod-a")

	ctx, cancel := context.WithCancel(t.Context())
	stream, _ := r.openThenClaim(ctx, t, held, "pod-a", 30_000)
	cancel()
	_, err := stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)

	r.goneAfterItsCompletion(t)
}

// goneAfterItsCompletion checks what pod-a, which completed the rig's
// first job and left while its next claim waited, left behind: its
// completion stands, and the job pushed next goes to another pod.
func (r *nextRig) goneAfterItsCompletion(t *testing.T) {
	t.Helper()
	r.e.push(r.pool, r.ids[1])
	other, err := r.w.claim(t.Context(), "pod-b", 10_000)
	require.NoError(t, err)
	require.NotNil(t, other, "the job pushed after pod-a left is claimable")
	assert.Equal(t, r.ids[1].String(), other.GetId())
	assert.Equal(t, store.JobCompleted, r.e.job(r.ids[0]).Status, "pod-a's completion stands")
}
