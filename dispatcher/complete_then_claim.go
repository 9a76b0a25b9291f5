package dispatcher

import (
	"context"

	"google.golang.org/grpc"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// CompleteThenClaim is Complete followed by the pod's Claim in one call:
// the first message answers the completion (with the next job when the
// claim settled while it committed, which ends the call); otherwise the
// claim goes on as Claim does (claimOn without until: it joins the lane's
// waiters, registers the worker, waits up to next.wait_ms) and the second
// message answers it. A pod of several jobs at a moderate rate, whose
// Complete found claims idle on the lane and answered no job, made a
// Claim after it: one gRPC exchange a job instead of two.
func (c *Coordinator) CompleteThenClaim(req *coordinatorv1.CompleteRequest, stream grpc.ServerStreamingServer[coordinatorv1.CompleteResponse]) error {
	return c.completeThenClaim(stream.Context(), "CompleteThenClaim", req, stream.Send)
}

// completeThenClaim answers req as CompleteThenClaim does, its messages
// sent with send; method names the call, for its errors.
func (c *Coordinator) completeThenClaim(ctx context.Context, method string, req *coordinatorv1.CompleteRequest, send func(*coordinatorv1.CompleteResponse) error) error {
	resp, lane, err := c.completeAndNext(ctx, method, req, true)
	if err != nil {
		return err
	}
	next := req.GetNext()
	settled := resp.GetNext().GetJob() != nil || resp.GetNextError() != ""
	if err := send(resp); err != nil || next == nil || settled || next.GetWaitMs() == 0 {
		return err
	}
	// After the first message, the call's error is the claim's (as
	// Claim's would be): the completion stands.
	claimed, err := c.claimOn(ctx, next, lane, nil)
	if err != nil {
		return err
	}
	return send(&coordinatorv1.CompleteResponse{Next: claimed})
}
