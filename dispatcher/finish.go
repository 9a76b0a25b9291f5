package dispatcher

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Complete records a held job's outputs and usage and finishes it; with
// next set it also claims the pod's next job (startNext), which is handed
// back when the completion fails.
func (c *Coordinator) Complete(ctx context.Context, req *coordinatorv1.CompleteRequest) (*coordinatorv1.CompleteResponse, error) {
	resp, _, err := c.completeAndNext(ctx, "Complete", req, false)
	return resp, err
}

// completeAndNext is Complete, called by method (for its errors). With
// waitLater the next claim may ask a wait (CompleteThenClaim waits the
// rest of it); lane is the next claim's lane once checked.
func (c *Coordinator) completeAndNext(ctx context.Context, method string, req *coordinatorv1.CompleteRequest, waitLater bool) (resp *coordinatorv1.CompleteResponse, lane string, err error) {
	id, err := parseJobID(method, req.GetJobId())
	if err != nil {
		return nil, "", err
	}
	u := req.GetUsage()
	for _, v := range []float64{u.GetEncodeSeconds(), u.GetOutputSeconds(), u.GetGpuSeconds()} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, "", status.Error(codes.InvalidArgument, method+": usage figures must be finite and not negative")
		}
	}
	acc := u.GetAccelerator()
	if acc == "" {
		acc = apiv1.AcceleratorCPU
	}
	if !slices.Contains(apiv1.Accelerators, acc) {
		return nil, "", status.Error(codes.InvalidArgument, method+": usage.accelerator must be "+strings.Join(apiv1.Accelerators, " or "))
	}
	tok, err := claimTokenHash(ctx)
	if err != nil {
		return nil, "", err
	}
	next, err := c.startNext(ctx, method, req.GetNext(), waitLater)
	if err != nil {
		return nil, "", err
	}
	usage := store.Usage{EncodeSeconds: u.GetEncodeSeconds(), OutputSeconds: u.GetOutputSeconds(), Accelerator: acc, GPUSeconds: u.GetGpuSeconds()}
	err = c.complete(ctx, id, tok, req.GetOutputs(), usage)
	c.completed(next)
	if err != nil {
		c.abandon(ctx, next)
		return nil, "", err
	}
	resp = &coordinatorv1.CompleteResponse{}
	next.answer(resp)
	return resp, next.laneOf(), nil
}

// complete finishes held job id (its claim token's hash tok) with outputs
// and usage; its errors are gRPC statuses.
func (c *Coordinator) complete(ctx context.Context, id uuid.UUID, tok []byte, outs []*coordinatorv1.Output, usage store.Usage) error {
	// Check first, outside any transaction: the caller holds the running
	// job (one read), and every output it lists is in storage (one HEAD
	// each, in parallel, bounded by OutputChecks). The completion then
	// checks the claim again in its one statement, so a job requeued
	// meanwhile is not completed by its former holder. With no outputs
	// there is nothing to check in storage, and the statement's own check
	// is the only one needed.
	held := store.Job{ID: id}
	if len(outs) > 0 {
		var err error
		held, err = c.store.CheckHeld(ctx, id, poolOf(ctx), tok)
		if err != nil {
			return c.toStatus(ctx, "Complete", err)
		}
	}
	outputs, err := c.checkOutputs(ctx, held, outs)
	if err != nil {
		return c.toStatus(ctx, "Complete", err)
	}
	res, err := c.completions.Do(ctx, store.CompleteRequest{JobID: id, PoolID: poolOf(ctx), TokenHash: tok, Outputs: outputs, Usage: usage, Now: c.cfg.Clock.Now()})
	j := res.Job
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return c.toStatus(ctx, "Complete", err)
	}
	c.metrics.JobsTotal.WithLabelValues(store.JobCompleted).Inc()
	c.metrics.EncodeSeconds.WithLabelValues(j.OrgID.String(), usage.Accelerator).Add(usage.EncodeSeconds)
	c.emit(ctx, j, "job.completed", map[string]any{"outputs": len(outs)})
	c.advance(ctx, j)
	return nil
}

// completeKeys: two completions of one job never share a batch.
func completeKeys(r store.CompleteRequest) []string { return []string{r.JobID.String()} }

// Fail ends a held job's attempt: requeue now (preempted), retry after a
// backoff, or fail for good.
func (c *Coordinator) Fail(ctx context.Context, req *coordinatorv1.FailRequest) (*coordinatorv1.FailResponse, error) {
	id, err := parseJobID("Fail", req.GetJobId())
	if err != nil {
		return nil, err
	}
	// The error may carry FFmpeg's words about tenant media: keep it as
	// storable text (no NUL, no cut UTF-8 sequence).
	msg := validation.Truncate(validation.Storable(strings.TrimSpace(req.GetError())), 4000)
	if msg == "" {
		return nil, status.Error(codes.InvalidArgument, "Fail: error must say what went wrong")
	}
	tok, err := claimTokenHash(ctx)
	if err != nil {
		return nil, err
	}
	preempted := req.GetRetryable() && msg == coordinatorv1.PreemptedError
	j, outcome, err := c.store.FailJob(ctx, id, poolOf(ctx), tok, msg, req.GetRetryable(), preempted, c.policy())
	if err != nil {
		return nil, c.toStatus(ctx, "Fail", err)
	}
	c.afterFail(ctx, j, outcome)
	resp := &coordinatorv1.FailResponse{Outcome: wireOutcomes[outcome], Attempts: int32(j.Attempts)}
	if j.RunAfter != nil {
		resp.RetryAtUnixMs = j.RunAfter.UnixMilli()
	}
	return resp, nil
}

// wireOutcomes maps the store's outcome of a failed attempt to the value
// FailResponse.outcome carries; the storage constant never goes on the wire.
var wireOutcomes = map[string]string{
	store.OutcomeRequeued:       coordinatorv1.OutcomeRequeued,
	store.OutcomeRetryScheduled: coordinatorv1.OutcomeRetryScheduled,
	store.OutcomeFailed:         coordinatorv1.OutcomeFailed,
}
