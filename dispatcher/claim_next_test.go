package dispatcher

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestCompleteClaimsNext: a Complete that carries the pod's next claim
// finishes its job and hands the pod the next one, claimed as Claim claims
// (running, the pod's, its own claim token); with the queue empty it
// answers no job; a next claim the coordinator refuses (another pool, a
// bad lane, no pod) refuses the whole call before anything is recorded;
// and when the completion fails, a job the claim took goes back to its
// queue with its attempt given back, and the pod is told the completion's
// error.
func TestCompleteClaimsNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		queued   int                                           // jobs submitted; the first is claimed before the Complete
		next     func(pool string) *coordinatorv1.ClaimRequest // the Complete's next
		token    func(held *coordinatorv1.Job) string          // the claim token the Complete sends
		outputs  []*coordinatorv1.Output                       // the Complete's outputs
		wantCode codes.Code                                    // the call's status
		check    func(t *testing.T, e *env, w *worker, ids []uuid.UUID, resp *coordinatorv1.CompleteResponse)
	}{
		{
			name: "completes and claims the next", queued: 2,
			next: func(pool string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: pool, Pod: "pod-1"}
			},
			token: (*coordinatorv1.Job).GetClaimToken,
			check: func(t *testing.T, e *env, w *worker, ids []uuid.UUID, resp *coordinatorv1.CompleteResponse) {
				assert.Equal(t, store.JobCompleted, e.job(ids[0]).Status)
				next := resp.GetNext().GetJob()
				require.NotNil(t, next, "the next job: %v", resp)
				assert.Equal(t, ids[1].String(), next.GetId())
				assert.Empty(t, resp.GetNextError())
				j := e.job(ids[1])
				assert.Equal(t, store.JobRunning, j.Status)
				require.NotNil(t, j.WorkerID)
				assert.Equal(t, "pod-1", *j.WorkerID)
				// Its claim token is the pod's: a plain Complete finishes it.
				last, err := w.client.Complete(w.ctx(t.Context(), next.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: next.GetId()})
				require.NoError(t, err)
				assert.Nil(t, last.GetNext(), "no next asked, none answered")
				assert.Equal(t, store.JobCompleted, e.job(ids[1]).Status)
			},
		},
		{
			name: "an empty queue answers no next job", queued: 1,
			next: func(pool string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: pool, Pod: "pod-1"}
			},
			token: (*coordinatorv1.Job).GetClaimToken,
			check: func(t *testing.T, e *env, _ *worker, ids []uuid.UUID, resp *coordinatorv1.CompleteResponse) {
				assert.Equal(t, store.JobCompleted, e.job(ids[0]).Status)
				require.NotNil(t, resp.GetNext(), "the claim was answered")
				assert.Nil(t, resp.GetNext().GetJob())
				assert.Empty(t, resp.GetNextError())
			},
		},
		{
			name: "a next claim of another pool refuses the call", queued: 2,
			next: func(string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: "someone-elses", Pod: "pod-1"}
			},
			token:    (*coordinatorv1.Job).GetClaimToken,
			wantCode: codes.PermissionDenied,
			check:    nothingRecorded,
		},
		{
			name: "a next claim of no lane we know refuses the call", queued: 2,
			next: func(pool string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: pool, Lane: "express", Pod: "pod-1"}
			},
			token:    (*coordinatorv1.Job).GetClaimToken,
			wantCode: codes.InvalidArgument,
			check:    nothingRecorded,
		},
		{
			name: "a next claim without a pod refuses the call", queued: 2,
			next:     func(pool string) *coordinatorv1.ClaimRequest { return &coordinatorv1.ClaimRequest{Pool: pool} },
			token:    (*coordinatorv1.Job).GetClaimToken,
			wantCode: codes.InvalidArgument,
			check:    nothingRecorded,
		},
		{
			name: "a failed completion hands the claimed job back", queued: 2,
			next: func(pool string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: pool, Pod: "pod-1"}
			},
			token:    func(*coordinatorv1.Job) string { return "not-the-claim-token" },
			wantCode: codes.PermissionDenied,
			check:    handedBack,
		},
		{
			name: "outputs not in storage hand the claimed job back", queued: 2,
			next: func(pool string) *coordinatorv1.ClaimRequest {
				return &coordinatorv1.ClaimRequest{Pool: pool, Pod: "pod-1"}
			},
			token:    (*coordinatorv1.Job).GetClaimToken,
			outputs:  []*coordinatorv1.Output{{Name: "720p/never-uploaded.mp4", Kind: "video"}},
			wantCode: codes.FailedPrecondition,
			check:    handedBack,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.start(Config{})
			w := e.worker(in.addr, store.DefaultPoolID)
			ids := e.submit(store.DefaultPoolID, tt.queued)
			held := w.mustClaim(t, "pod-1")
			require.Equal(t, ids[0].String(), held.GetId())

			resp, err := w.client.Complete(w.ctx(t.Context(), tt.token(held)), &coordinatorv1.CompleteRequest{
				JobId: held.GetId(), Outputs: tt.outputs, Usage: &coordinatorv1.Usage{EncodeSeconds: 1}, Next: tt.next(store.DefaultPoolID),
			})
			assert.Equal(t, tt.wantCode, status.Code(err), "%v", err)
			tt.check(t, e, w, ids, resp)
		})
	}
}

// nothingRecorded: the held job still runs and the next is still queued,
// on its list, untouched.
func nothingRecorded(t *testing.T, e *env, _ *worker, ids []uuid.UUID, _ *coordinatorv1.CompleteResponse) {
	t.Helper()
	assert.Equal(t, store.JobRunning, e.job(ids[0]).Status)
	j := e.job(ids[1])
	assert.Equal(t, store.JobQueued, j.Status)
	assert.Nil(t, j.Error)
	members, err := e.queue.Members(t.Context(), store.DefaultPoolID, "live")
	require.NoError(t, err)
	assert.True(t, slices.Contains(members, ids[1].String()), "on the list: %v", members)
}

// handedBack: the held job still runs, and the next is queued again.
func handedBack(t *testing.T, e *env, _ *worker, ids []uuid.UUID, _ *coordinatorv1.CompleteResponse) {
	t.Helper()
	assert.Equal(t, store.JobRunning, e.job(ids[0]).Status, "the held job is not completed")
	// The claim may have taken the next job before the completion failed
	// (abandon handed it back), while readying it (the claim, cancelled,
	// handed it back itself), or not at all: either way it is queued, on
	// its list, no attempt used.
	j := e.job(ids[1])
	assert.Equal(t, store.JobQueued, j.Status)
	assert.Zero(t, j.Attempts)
	if j.Error != nil {
		assert.Contains(t, []string{completeFailedMsg, handedBackMsg}, *j.Error)
	}
	members, err := e.queue.Members(t.Context(), store.DefaultPoolID, "live")
	require.NoError(t, err)
	assert.Contains(t, members, ids[1].String())
}

// TestNextClaimBehindIdleClaimsDoesNotPop: a Complete's next claim pops
// nothing while a claim of the coordinator waits idle on the lane (the
// lane was empty at its pop and nothing was pushed since) and answers no
// job at once, registering nothing; the job that comes next goes to the
// waiting claim, as it would have without the Complete.
func TestNextClaimBehindIdleClaimsDoesNotPop(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	waitWakeSubscribed(t, e)
	pool := e.pool("next-behind")
	ids := e.create(pool.ID, 2, 3)
	pops := func() uint64 {
		n, _ := histogramOf(t, in.metrics.Registry, "mpegflow_group_commit_batch_size", map[string]string{"kind": "pop"})
		return n
	}
	laneKey := e.queue.Keys().Queue(pool.ID, apiv1.LaneLive)
	w := e.worker(in.addr, pool.ID)
	e.push(pool.ID, ids[0])
	held := w.mustClaim(t, "pod-a")
	require.Equal(t, ids[0].String(), held.GetId())

	jobs, errs := claimAsync(t, e, in, pool.ID, "pod-b")
	require.Eventually(t, func() bool { return in.coord.wakeups.idleLane(laneKey) }, 10*time.Second, 5*time.Millisecond, "pod-b's claim popped nothing and waits, idle")
	popped := pops()
	resp, err := w.client.Complete(w.ctx(t.Context(), held.GetClaimToken()), &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: pool.ID, Pod: "pod-a"},
	})
	require.NoError(t, err)
	require.NotNil(t, resp.GetNext())
	assert.Nil(t, resp.GetNext().GetJob())
	assert.Equal(t, store.JobCompleted, e.job(ids[0]).Status)
	assert.Equal(t, popped, pops(), "the next claim did not pop")

	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, e.org.ID.String(), ids[1].String(), nil))
	assert.Equal(t, ids[1].String(), answer(t, jobs, errs).GetId(), "the waiting claim got the next job")
}

// TestNextClaimMustNotWait: a next claim that asks to wait is refused, with
// nothing recorded: a pod that waits claims with Claim.
func TestNextClaimMustNotWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{})
	w := e.worker(in.addr, store.DefaultPoolID)
	ids := e.submit(store.DefaultPoolID, 2)
	held := w.mustClaim(t, "pod-1")
	_, err := w.client.Complete(w.ctx(t.Context(), held.GetClaimToken()), &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: store.DefaultPoolID, Pod: "pod-1", WaitMs: 1000},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	nothingRecorded(t, e, nil, ids, nil)
}
