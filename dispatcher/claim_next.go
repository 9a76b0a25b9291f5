package dispatcher

import (
	"context"
	"sync/atomic"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// nextClaim is the claim a Complete carries (CompleteRequest.next). It
// runs while the completion commits and waits for work until then (until
// is closed when the completion has answered), as the Claim a pod sent
// beside its Complete did.
type nextClaim struct {
	pod    string
	lane   string
	cancel context.CancelFunc
	until  chan struct{}
	done   chan struct{}
	resp   *coordinatorv1.ClaimResponse
	err    error
	// state is nextRunning, then nextAwaits when the claim got a job
	// before the completion answered (the completion is then counted
	// awaited), or nextCompleted when the completion answered first.
	state atomic.Int32
}

const (
	nextRunning int32 = iota
	nextAwaits
	nextCompleted
)

// startNext checks req, the next claim of a Complete (nil: none asked;
// method names the call, for its errors), and starts it (claimOn, until
// the completion answers). A wait is refused unless waitLater (the call
// waits the rest of it once the completion has answered). Nothing starts
// when the request is refused.
func (c *Coordinator) startNext(ctx context.Context, method string, req *coordinatorv1.ClaimRequest, waitLater bool) (*nextClaim, error) {
	if req == nil {
		return nil, nil
	}
	lane, err := checkClaim(method+": next", poolOf(ctx), req)
	if err != nil {
		return nil, err
	}
	if req.GetWaitMs() != 0 && !waitLater {
		return nil, status.Error(codes.InvalidArgument, method+": next waits only while the completion commits; its wait_ms must be 0 (a pod that waits longer claims with CompleteThenClaim, or with Claim)")
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &nextClaim{pod: req.GetPod(), lane: lane, cancel: cancel, until: make(chan struct{}), done: make(chan struct{})}
	c.spare.Go(ctx, func() {
		defer close(n.done)
		n.resp, n.err = c.claimOn(ctx, req, lane, n.until)
		if n.resp.GetJob() != nil && n.state.CompareAndSwap(nextRunning, nextAwaits) {
			c.awaitCompletion()
		}
	})
	return n, nil
}

// completed tells the claim that the completion has answered: it stops
// waiting for work, and the completion is no longer awaited.
func (c *Coordinator) completed(n *nextClaim) {
	if n == nil {
		return
	}
	close(n.until)
	if n.state.Swap(nextCompleted) == nextAwaits {
		c.completionAnswered()
	}
}

// answer waits for the claim and puts it in the Complete's answer.
func (n *nextClaim) answer(resp *coordinatorv1.CompleteResponse) {
	if n == nil {
		return
	}
	<-n.done
	n.cancel()
	if n.err != nil {
		resp.NextError = status.Convert(n.err).Message()
		return
	}
	resp.Next = n.resp
}

// completeFailedMsg is the error a job handed back by abandon records.
const completeFailedMsg = "the claiming pod's Complete, which carried this claim, failed; requeued"

// abandon ends the claim of a Complete whose completion failed: a job it
// took goes back to its queue with the attempt given back (handBack), as
// one whose pod left before receiving it does.
func (c *Coordinator) abandon(ctx context.Context, n *nextClaim) {
	if n == nil {
		return
	}
	n.cancel()
	<-n.done
	job := n.resp.GetJob()
	if n.err != nil || job == nil {
		return
	}
	id, err := uuid.Parse(job.GetId())
	if err != nil {
		return // made by Claim from a parsed id: cannot happen
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupCommitTimeout)
	defer cancel()
	c.handBack(ctx, store.Job{ID: id, PoolID: job.GetPool(), WorkerID: &n.pod}, job.GetClaimToken(), completeFailedMsg)
}

// laneOf is the claim's lane ("" for none).
func (n *nextClaim) laneOf() string {
	if n == nil {
		return ""
	}
	return n.lane
}
