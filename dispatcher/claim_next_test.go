package dispatcher

import (
	"context"
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
	// CompleteThenClaim with a next claim that asks no wait is Complete:
	// one message, the same answers.
	for _, method := range []string{"Complete", "CompleteThenClaim"} {
		for _, tt := range tests {
			t.Run(method+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				in := e.start(Config{})
				w := e.worker(in.addr, store.DefaultPoolID)
				ids := e.submit(store.DefaultPoolID, tt.queued)
				held := w.mustClaim(t, "pod-1")
				require.Equal(t, ids[0].String(), held.GetId())

				req := &coordinatorv1.CompleteRequest{
					JobId: held.GetId(), Outputs: tt.outputs, Usage: &coordinatorv1.Usage{EncodeSeconds: 1}, Next: tt.next(store.DefaultPoolID),
				}
				var resp *coordinatorv1.CompleteResponse
				var err error
				if method == "Complete" {
					resp, err = w.client.Complete(w.ctx(t.Context(), tt.token(held)), req)
				} else {
					var msgs []*coordinatorv1.CompleteResponse
					msgs, err = completeThenClaim(w.ctx(t.Context(), tt.token(held)), w.client, req)
					if err == nil {
						require.Len(t, msgs, 1, "no wait asked: one message")
						resp = msgs[0]
					} else {
						assert.Empty(t, msgs, "a refused call answers nothing")
					}
				}
				assert.Equal(t, tt.wantCode, status.Code(err), "%v", err)
				tt.check(t, e, w, ids, resp)
			})
		}
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

// nextRig is a coordinator that polls hourly, with its wake subscription
// up, a pool, n jobs created in it (none pushed) and a worker of it.
type nextRig struct {
	e       *env
	in      *instance
	w       *worker
	pool    string
	laneKey string
	ids     []uuid.UUID
}

func newNextRig(t *testing.T, name string, n int) *nextRig {
	t.Helper()
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	waitWakeSubscribed(t, e)
	pool := e.pool(name)
	return &nextRig{e: e, in: in, w: e.worker(in.addr, pool.ID), pool: pool.ID,
		laneKey: e.queue.Keys().Queue(pool.ID, apiv1.LaneLive), ids: e.create(pool.ID, n, 3)}
}

// completeNext completes held, carrying pod's next claim.
func (r *nextRig) completeNext(ctx context.Context, held *coordinatorv1.Job, pod string) (*coordinatorv1.CompleteResponse, error) {
	return r.w.client.Complete(r.w.ctx(ctx, held.GetClaimToken()), &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: pod},
	})
}

// TestNextClaimOnEmptyLaneDoesNotPop: a Complete's next claim pops
// nothing when a pop of the coordinator found the lane empty and no push
// has been announced on it since, and answers no job at once; once a push
// is announced it pops again, and takes the job pushed.
func TestNextClaimOnEmptyLaneDoesNotPop(t *testing.T) {
	r := newNextRig(t, "next-empty", 3)
	e, in, w, ids := r.e, r.in, r.w, r.ids
	e.push(r.pool, ids[0], ids[1])
	first, second := w.mustClaim(t, "pod-a"), w.mustClaim(t, "pod-b")
	none, err := w.claim(t.Context(), "pod-c", 0)
	require.NoError(t, err)
	require.Nil(t, none, "the lane is empty")
	completeNext := func(held *coordinatorv1.Job, pod string) *coordinatorv1.Job {
		t.Helper()
		resp, err := r.completeNext(t.Context(), held, pod)
		require.NoError(t, err)
		require.NotNil(t, resp.GetNext())
		assert.Equal(t, store.JobCompleted, e.job(uuid.MustParse(held.GetId())).Status)
		return resp.GetNext().GetJob()
	}

	popped := popBatches(t, in)
	assert.Nil(t, completeNext(first, "pod-a"))
	assert.Equal(t, popped, popBatches(t, in), "the next claim did not pop")

	wakes := in.coord.wakeups.wakesOn(r.laneKey)
	e.push(r.pool, ids[2])
	require.Eventually(t, func() bool { return in.coord.wakeups.wakesOn(r.laneKey) > wakes }, 10*time.Second, 5*time.Millisecond, "the push is announced")
	next := completeNext(second, "pod-b")
	require.NotNil(t, next, "after the push the next claim pops")
	assert.Equal(t, ids[2].String(), next.GetId())
	assert.Equal(t, popped+1, popBatches(t, in))
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

// TestNextClaimWaitsWhileCompletionCommits: while a Complete's completion
// is held up (its job's row locked), its next claim, finding the lane
// empty, waits for work as the pod's own Claim would, takes a job pushed
// meanwhile, and hurries the completion (no gathering batch waits while a
// pod's next job waits on a completion); the Complete answers once the
// completion commits, with that job.
func TestNextClaimWaitsWhileCompletionCommits(t *testing.T) {
	r := newNextRig(t, "next-waits", 2)
	e, in, ids := r.e, r.in, r.ids
	e.push(r.pool, ids[0])
	held := r.w.mustClaim(t, "pod-a")

	tx, err := e.db.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.WithoutCancel(t.Context())) // rolled back below; this one is for a failed assertion
	_, err = tx.Exec(t.Context(), `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, ids[0])
	require.NoError(t, err)
	type answer struct {
		resp *coordinatorv1.CompleteResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := r.completeNext(t.Context(), held, "pod-a")
		answered <- answer{resp, err}
	}()
	require.Eventually(t, func() bool { return in.coord.wakeups.idleLane(r.laneKey) }, 10*time.Second, 5*time.Millisecond,
		"the next claim found the lane empty and waits")
	assert.True(t, in.coord.podsWait(), "a claim waits for work, so completions may gather")

	e.push(r.pool, ids[1])
	require.Eventually(t, func() bool { return in.coord.awaited.Load() == 1 }, 10*time.Second, 5*time.Millisecond,
		"the next claim took the pushed job and awaits the completion")
	assert.False(t, in.coord.podsWait(), "no batch gathers while a pod's next job waits on a completion")
	select {
	case a := <-answered:
		t.Fatalf("the Complete answered before its completion committed: %v, %v", a.resp, a.err)
	default:
	}

	require.NoError(t, tx.Rollback(t.Context()))
	var a answer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the Complete did not answer once its row was free")
	}
	require.NoError(t, a.err)
	assert.Equal(t, ids[1].String(), a.resp.GetNext().GetJob().GetId())
	assert.Equal(t, store.JobCompleted, e.job(ids[0]).Status)
	assert.Equal(t, store.JobRunning, e.job(ids[1]).Status)
	assert.Zero(t, in.coord.awaited.Load())
}

// TestNextClaimBehindIdleClaims: while a claim of the coordinator waits
// idle on the lane, a Complete's next claim neither pops nor waits: it
// answers no job, and the job that comes next goes to the waiting claim,
// first in line.
func TestNextClaimBehindIdleClaims(t *testing.T) {
	r := newNextRig(t, "next-behind", 2)
	e, in, ids := r.e, r.in, r.ids
	e.push(r.pool, ids[0])
	held := r.w.mustClaim(t, "pod-a")
	jobs, errs := claimAsync(t, e, in, r.pool, "pod-b")
	require.Eventually(t, func() bool { return in.coord.wakeups.idleLane(r.laneKey) }, 10*time.Second, 5*time.Millisecond, "pod-b's claim waits, idle")

	popped := popBatches(t, in)
	resp, err := r.completeNext(t.Context(), held, "pod-a")
	require.NoError(t, err)
	require.NotNil(t, resp.GetNext())
	assert.Nil(t, resp.GetNext().GetJob())
	assert.Equal(t, popped, popBatches(t, in), "the next claim did not pop")
	assert.Equal(t, store.JobCompleted, e.job(ids[0]).Status)

	require.True(t, in.coord.Offer(r.pool, apiv1.LaneLive, e.org.ID.String(), ids[1].String(), nil))
	assert.Equal(t, ids[1].String(), answer(t, jobs, errs).GetId(), "the waiting claim got the next job")
}
