package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// Claim hands the pod one job of its pool and lane. It pops ids through the
// pause-aware Lua gate and keeps the first one whose conditional UPDATE wins;
// stale and duplicate ids are dropped. With wait > 0 it long-polls, and
// while it waits a submission in this process may hand it a job (Offer).
func (c *Coordinator) Claim(ctx context.Context, req *coordinatorv1.ClaimRequest) (*coordinatorv1.ClaimResponse, error) {
	lane, err := checkClaim("Claim", poolOf(ctx), req)
	if err != nil {
		return nil, err
	}
	return c.claimOn(ctx, req, lane, nil)
}

// claimOn claims as Claim does on lane, req checked. With until set (the
// next claim a Complete carries; its wait_ms is not read) it waits for
// work only until until is closed (its Complete's completion has committed or
// failed), as the Claim a pod sent beside its Complete would have waited
// meanwhile, and registers nothing: a pod it answers no job claims with
// Claim then, which does. While claims of this coordinator wait idle on
// the lane it answers no job at once: they are first in line for the
// lane's work (with many pods at a moderate rate, most Completes). Nor
// does it pop on arriving when a pop of this coordinator found the lane
// empty less than a poll interval ago and no push has been announced on
// it since (wakeups.emptyNow): it waits, idle, for a push or a submission
// handed over (with every pod busy and submissions the bottleneck).
func (c *Coordinator) claimOn(ctx context.Context, req *coordinatorv1.ClaimRequest, lane string, until <-chan struct{}) (*coordinatorv1.ClaimResponse, error) {
	pool := poolOf(ctx)
	pod := req.GetPod()
	caps, _ := json.Marshal(req.GetCapabilities()) // plain message: cannot fail
	worker := store.Worker{ID: pod, PoolID: pool, Lane: lane, Node: req.GetNode(), Capabilities: caps}
	// The worker is registered by the statement that claims a job; a call
	// that finds nothing to claim registers it on its own, once, so idle
	// and drained pods are seen (and a drained one stops polling). It does
	// so when its pool is paused, when its wait is up, or once it has
	// waited a poll interval: a pod of a busy pool, woken to a job within
	// that time, costs no statement of its own (with 128 pods and jobs
	// arriving one at a time, registering at the first empty pop was 0.75
	// statements a job).
	registered := false
	register := func() (stop bool, err error) {
		if registered {
			return false, nil
		}
		registered = true
		w, err := c.store.RegisterWorker(ctx, worker, c.cfg.Clock.Now())
		if err != nil {
			return true, c.toStatus(ctx, "Claim", err)
		}
		return w.Status == store.WorkerDraining || w.Status == store.WorkerEvicted, nil
	}
	// take claims an id, popped or handed to this claim by a submission
	// (Offer), or readies a job a submission's statement claimed for it
	// (Reserve); next means it was stale or a duplicate, or the job failed
	// at claim, and another is to be looked for.
	take := func(h handed) (resp *coordinatorv1.ClaimResponse, next bool, err error) {
		var job *coordinatorv1.Job
		if h.claimed != nil {
			job, err = c.prepare(ctx, *h.claimed, h.token, worker.ID)
		} else {
			job, err = c.claim(ctx, h.id, h.org, worker)
		}
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, errInputRefused):
			return nil, true, nil
		case errors.Is(err, errPoolPaused):
			// Paused in Postgres, its truth, before the pop script's
			// gate knew it (or the id was handed over, past that gate).
			if _, err := register(); err != nil {
				return nil, false, err
			}
			return &coordinatorv1.ClaimResponse{}, false, nil
		case errors.Is(err, errWorkerRefused):
			return &coordinatorv1.ClaimResponse{}, false, nil
		case err != nil:
			return nil, false, err
		}
		return &coordinatorv1.ClaimResponse{Job: job}, false, nil
	}
	wait := min(time.Duration(req.GetWaitMs())*time.Millisecond, c.cfg.MaxWait)
	next := until != nil
	if next {
		wait = c.cfg.MaxWait // until ends it first
	}
	start := c.cfg.Clock.Now()
	deadline, registerAt := start.Add(wait), start.Add(c.cfg.PollInterval)
	laneKey := c.queue.Keys().Queue(pool, lane)
	if next && c.wakeups.idleLane(laneKey) {
		// Claims already wait idle on the lane, and get its work first.
		return &coordinatorv1.ClaimResponse{}, nil
	}
	knownEmpty := next && c.wakeups.emptyNow(laneKey, start, c.cfg.PollInterval)
	for arriving := true; ; arriving = false {
		// A pod that is gone (its call cancelled or cut) is popped nothing.
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		// Registered before the pop, so that a push between an empty pop
		// and the wait below still wakes this claim.
		wake, leave, skip := (<-chan handed)(nil), func() handed { return handed{} }, false
		if c.cfg.Clock.Now().Before(deadline) {
			wake, leave, skip = c.wakeups.join(laneKey, arriving, worker, knownEmpty)
		}
		// done unregisters the claim; a job a submission's statement
		// claimed for it meanwhile (a reserved claim waits for that
		// statement) comes back as kept, to be readied for the pod, or
		// handed back when the pod is gone (prepare).
		kept := handed{}
		done := func() {
			if h := leave(); h.claimed != nil {
				kept = h
			}
		}
		// A claim arriving while an idle claim waits on the lane waits
		// without a pop (wakeups.join): with submissions handed to
		// waiting claims, most pods' claims arrive so. Woken, or at its
		// poll, it pops as any claim does.
		popped, err := queue.Popped{Result: queue.PopEmpty}, error(nil)
		if !skip {
			seen := c.wakeups.wakesOn(laneKey)
			popped, err = c.pops.Do(ctx, queue.Lane{Pool: pool, Lane: lane})
			if err == nil {
				err = popped.Err
			}
			if err == nil && popped.Result == queue.PopEmpty {
				c.wakeups.foundEmpty(laneKey, seen, c.cfg.Clock.Now())
				if wake != nil {
					c.wakeups.setIdle(laneKey, wake)
				}
			}
		}
		res, id, org := popped.Result, popped.ID, popped.Org
		if res != queue.PopEmpty || err != nil {
			done()
		}
		// A claim leaves only once it has dealt with a job kept for it.
		endWith := func(resp *coordinatorv1.ClaimResponse, err error) (*coordinatorv1.ClaimResponse, error) {
			if kept.claimed != nil {
				if kresp, next, kerr := take(kept); !next {
					return kresp, kerr
				}
			}
			return resp, err
		}
		if err != nil {
			return endWith(nil, c.toStatus(ctx, "Claim", err))
		}
		switch res {
		case queue.PopPaused:
			if next {
				return endWith(&coordinatorv1.ClaimResponse{}, nil)
			}
			if _, err := register(); err != nil {
				return endWith(nil, err)
			}
			return endWith(&coordinatorv1.ClaimResponse{}, nil)
		case queue.PopJob:
			// A claim that popped something is not idle, so no
			// submission reserved it: nothing was kept for it.
			if resp, next, err := take(handed{id: id, org: org}); !next {
				return resp, err
			}
			continue
		}
		now := c.cfg.Clock.Now()
		if !next && (!now.Before(deadline) || !now.Before(registerAt)) {
			if stop, err := register(); err != nil || stop {
				done()
				if err != nil {
					return endWith(nil, err)
				}
				return endWith(&coordinatorv1.ClaimResponse{}, nil)
			}
		}
		if closed(until) {
			done()
			return endWith(&coordinatorv1.ClaimResponse{}, nil)
		}
		if !now.Before(deadline) {
			done()
			return endWith(&coordinatorv1.ClaimResponse{}, nil)
		}
		var (
			end  error  // the call ends with it, when set
			got  handed // a job handed to this claim, when its id is set
			over bool   // until was closed: nothing more to wait for
		)
		c.claimIdle()
		select {
		case <-ctx.Done():
			end = status.FromContextError(ctx.Err()).Err()
		case <-c.stopping:
			// Unavailable, not an empty answer: an empty answer before the
			// wait is up tells the pod its pool is paused or it is drained.
			end = errStopping
		case <-until:
			over = true
		case got = <-wake:
			if got.id == "" {
				c.metrics.ClaimWakeups.Inc()
			}
		case <-c.cfg.Clock.After(min(c.cfg.PollInterval, deadline.Sub(c.cfg.Clock.Now()))):
		}
		c.claimBusy()
		done()
		if kept.claimed != nil {
			got = kept
		}
		if got.claimed != nil || (end == nil && got.id != "") {
			// Handed over by a submission: claimed without a pop, or by
			// the submission's own statement. A job claimed so is readied
			// even for a claim that is ending (and handed back when its
			// pod is gone).
			if resp, next, err := take(got); !next {
				return resp, err
			}
		}
		if end != nil {
			return nil, end
		}
		if over {
			return &coordinatorv1.ClaimResponse{}, nil
		}
	}
}

// closed says whether ch (nil: never) is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// checkClaim checks a claim's request (Claim's own, or the next claim a
// Complete carries: call names which) from a worker of pool, and answers
// its lane.
func checkClaim(call, pool string, req *coordinatorv1.ClaimRequest) (lane string, err error) {
	if req.GetPool() != "" && req.GetPool() != pool {
		return "", status.Error(codes.PermissionDenied, call+": the request names another pool than the worker token")
	}
	lane = req.GetLane()
	if lane == "" {
		lane = apiv1.LaneLive
	}
	if lane != apiv1.LaneLive && lane != apiv1.LaneBackfill {
		return "", status.Error(codes.InvalidArgument, call+": lane must be live or backfill")
	}
	if pod := req.GetPod(); pod == "" || len(pod) > 253 || len(req.GetNode()) > 253 || req.GetWaitMs() < 0 {
		return "", status.Error(codes.InvalidArgument, call+": pod must be 1 to 253 characters, node at most 253, wait_ms at least 0")
	}
	return lane, nil
}

// errStopping ends a long-polling claim when the coordinator stops.
var errStopping = status.Error(codes.Unavailable, "Claim: the coordinator is stopping; claim again")

// errWorkerRefused means the claiming worker is drained or evicted: the
// popped id went back to its list and the worker gets nothing.
var errWorkerRefused = errors.New("worker refused: drained or evicted")

// errPoolPaused means the claimed job's pool is paused (as Postgres has
// it): the id went back to its list and the worker gets nothing.
var errPoolPaused = errors.New("pool paused")

// claim claims a popped id (of organization org) for worker in one
// statement (the job, the worker's registration and the job.started
// event). ErrNotFound means the id was stale; errWorkerRefused that the
// worker may not take work; other errors are already gRPC statuses.
func (c *Coordinator) claim(ctx context.Context, rawID, org string, worker store.Worker) (*coordinatorv1.Job, error) {
	pool, lane, pod := worker.PoolID, worker.Lane, worker.ID
	id, err := uuid.Parse(rawID)
	if err != nil {
		c.log.WarnContext(ctx, "dropped a malformed id from the queue; something other than MpegFlow writes to it",
			slog.String("pool_id", pool), slog.String("value", rawID))
		return nil, store.ErrNotFound
	}
	token := newClaimToken()
	now := c.cfg.Clock.Now()
	lease := now.Add(c.cfg.Lease)
	res, err := c.claims.Do(ctx, store.ClaimRequest{JobID: id, Worker: worker, TokenHash: hashToken(token), Now: now, LeaseUntil: lease})
	j := res.Job
	if err == nil {
		err = res.Err
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		// The id left Redis but no claim committed (the worker may not
		// take work, or the statement failed): put it back so the job is
		// not left for the reconciler to find.
		c.pushBack(context.WithoutCancel(ctx), handed{pool: pool, lane: lane, id: rawID, org: org}, "claim failed and the id could not be pushed back")
		if errors.Is(err, store.ErrWorkerRefused) {
			return nil, errWorkerRefused
		}
		if errors.Is(err, store.ErrPoolPaused) {
			return nil, errPoolPaused
		}
		return nil, c.toStatus(ctx, "Claim", err)
	}
	return c.prepare(ctx, j, token, pod)
}

// prepare readies a job just claimed for pod under the claim token token
// (by the claim's statement, or by the submission's that inserted it,
// Reserve) for the pod: its input and caption files presigned, its
// content key, a task's parts; then posts job.started and observes the
// dispatch latency. A job the pod cannot be given is failed or retried
// (refuseInput, retryAtClaim); when the pod is gone it goes back to its
// queue (unlessGone).
func (c *Coordinator) prepare(ctx context.Context, j store.ClaimedJob, token, pod string) (*coordinatorv1.Job, error) {
	// Preparing the job for a pod that is gone would only fail it.
	if err := c.unlessGone(ctx, j.Job, token); err != nil {
		return nil, err
	}
	lane, lease := j.Lane, time.Time{}
	if j.LeaseExpiresAt != nil {
		lease = *j.LeaseExpiresAt
	}
	input, presigned, err := c.inputURL(ctx, j)
	what := "the input"
	var captions []*coordinatorv1.Caption
	if err == nil {
		what = "a caption file"
		captions, err = c.captions(ctx, j)
	}
	if errors.Is(err, objscope.ErrRefused) {
		return nil, c.refuseInput(ctx, j, token, what, err)
	}
	if err != nil {
		// Nothing is handed out without a checked input.
		return nil, c.retryAtClaim(ctx, j, token, err, "job input could not be checked or presigned; the job is retried, check Postgres and object storage",
			"the input could not be prepared; retrying")
	}
	key, err := c.contentKey(ctx, j)
	if err != nil {
		// An encrypted job is never handed out without its key.
		return nil, c.retryAtClaim(ctx, j, token, err, "the job's content key could not be made or read; the job is retried, check Postgres and MPEGFLOW_SERVER_SECRET",
			"the content key could not be prepared; retrying")
	}
	var meta map[string]string
	if len(j.Metadata) > len("{}") { // most jobs carry none: nothing to decode
		_ = json.Unmarshal(j.Metadata, &meta) // written by the API as a string map
	}
	out := &coordinatorv1.Job{
		Id: j.ID.String(), OrgId: j.OrgID.String(), Pool: j.PoolID, Lane: j.Lane, SpecJson: j.Spec,
		InputUrl: input, InputPresigned: presigned, Captions: captions, ClaimToken: token, LeaseExpiresUnixMs: lease.UnixMilli(),
		Attempt: int32(j.Attempts), MaxAttempts: int32(j.MaxAttempts), Metadata: meta,
		HeartbeatIntervalMs: int32(c.cfg.HeartbeatInterval.Milliseconds()), ContentKey: key,
	}
	if err := c.taskView(ctx, j.Job, out); err != nil {
		return nil, c.retryAtClaim(ctx, j, token, err, "a task's parts could not be read or presigned; the task is retried, check Postgres and object storage",
			"the task's parts could not be prepared; retrying")
	}
	if err := c.unlessGone(ctx, j.Job, token); err != nil {
		return nil, err
	}
	c.emit(ctx, j.Job, "job.started", map[string]any{"worker_id": pod, "attempt": j.Attempts})
	// From the job's last becoming claimable (the clock of whoever queued
	// it or resumed its pool) to its handing out (this one's): clocks a
	// little apart give 0, not less.
	kind := telemetry.DispatchJob
	if j.ParentID != nil {
		kind = telemetry.DispatchTask
	}
	c.metrics.JobDispatch.WithLabelValues(lane, kind).Observe(max(c.cfg.Clock.Since(j.QueuedAt), 0).Seconds())
	return out, nil
}

// handedBackMsg is the error a job handed back by unlessGone records.
const handedBackMsg = "the claiming pod left before it received the job; requeued"

// unlessGone hands a just-claimed job back when the pod that claimed it is
// gone (its Claim cancelled or cut while the claim committed): the job
// goes back to its queue at once with the attempt given back, as for a
// preempted pod, instead of waiting out a lease nobody holds for Stale Job
// Recovery. It answers the call's context error then, nil while the pod
// is there. A reply lost on the wire after this check still waits for
// the lease. The job's history keeps the claim's job.started, then
// job.requeued; the live stream, which job.started had not reached yet,
// sees only job.requeued.
func (c *Coordinator) unlessGone(ctx context.Context, j store.Job, token string) error {
	if ctx.Err() == nil {
		return nil
	}
	gone := status.FromContextError(ctx.Err()).Err()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupCommitTimeout)
	defer cancel()
	c.handBack(ctx, j, token, handedBackMsg)
	return gone
}

// handBack puts job j, claimed under token for a pod that will never
// receive it (why, recorded as the attempt's error, says why), back on its
// queue with the attempt given back (unlessGone, abandon).
func (c *Coordinator) handBack(ctx context.Context, j store.Job, token, why string) {
	back, outcome, err := c.store.FailJob(ctx, j.ID, j.PoolID, hashToken(token), why, true, true, c.policy())
	if err != nil {
		c.log.WarnContext(ctx, "a job claimed for a pod that did not receive it could not be handed back; if it is still running, Stale Job Recovery queues it again when its lease lapses",
			slog.String("job_id", j.ID.String()), slog.String("worker_id", deref(j.WorkerID)), slog.String("why", why), slog.Any("error", err))
		return
	}
	c.log.InfoContext(ctx, "the pod did not receive its job; the job went back to its queue",
		slog.String("job_id", j.ID.String()), slog.String("worker_id", deref(j.WorkerID)), slog.String("why", why))
	c.afterFail(ctx, back, outcome)
}

// groupCommitTimeout bounds one group-commit statement, which runs
// detached from its callers (one caller leaving does not cancel the
// others' claims).
const groupCommitTimeout = 30 * time.Second

// claimKeys are what two claims of one batch must not share: one upsert
// cannot touch a worker row twice, and one UPDATE would apply only one of
// two claims of a job.
func claimKeys(r store.ClaimRequest) []string {
	return []string{"worker/" + r.Worker.ID, "job/" + r.JobID.String()}
}

// errInputRefused means the claimed job's input was outside its
// organization's storage scope: the job failed instead of being handed out.
var errInputRefused = errors.New("job input outside its organization's storage scope")

// inputURL is where the worker reads the input: a presigned GET for assets
// and storage references (presigned=true: MpegFlow's own storage, or a
// bucket granted to the organization), the submitted https URL otherwise
// (the worker fetches it through the SSRF guard). The row is resolved
// against the job's organization again, as the API did at submission, so a
// row changed behind the API is never presigned: such inputs give an error
// matching objscope.ErrRefused.
func (c *Coordinator) inputURL(ctx context.Context, j store.ClaimedJob) (u string, presigned bool, err error) {
	if j.InputObjectKey != "" {
		ref := objscope.Ref{Bucket: c.objects.Bucket(), Key: j.InputObjectKey}
		if err := c.scopes.Own(j.OrgID).CheckObject(ref); err != nil {
			return "", false, fmt.Errorf("input asset key %q: %w", j.InputObjectKey, err)
		}
		p, err := c.objects.PresignGet(ctx, ref.Key)
		return p.URL, true, err
	}
	if j.InputURL == nil {
		return "", false, errors.New("job has no input")
	}
	return c.resolveURL(ctx, j.OrgID, "input", *j.InputURL)
}

// resolveURL resolves a stored URL of a job of org (what names it, for
// errors): a storage reference is checked against the organization's
// scope again and presigned, anything else is the customer's URL, handed
// out as it is for the worker to fetch through the SSRF guard.
func (c *Coordinator) resolveURL(ctx context.Context, org uuid.UUID, what, u string) (string, bool, error) {
	ref, isRef, err := c.scopes.Reference(ctx, org, u)
	switch {
	case err != nil:
		return "", false, fmt.Errorf("%s %q: %w", what, u, err)
	case !isRef:
		return u, false, nil
	case ref.Bucket == c.objects.Bucket():
		p, err := c.objects.PresignGet(ctx, ref.Key)
		return p.URL, true, err
	}
	p, err := c.objects.PresignGetIn(ctx, ref.Bucket, ref.Key)
	return p.URL, true, err
}

// captions resolves the job's caption files as its input is (resolveURL);
// a stored list that does not decode is an error.
func (c *Coordinator) captions(ctx context.Context, j store.ClaimedJob) ([]*coordinatorv1.Caption, error) {
	if len(j.Captions) == 0 {
		return nil, nil
	}
	var stored []apiv1.JobCaption
	if err := json.Unmarshal(j.Captions, &stored); err != nil {
		return nil, fmt.Errorf("job captions: %w", err)
	}
	out := make([]*coordinatorv1.Caption, 0, len(stored))
	for i, sc := range stored {
		u, presigned, err := c.resolveURL(ctx, j.OrgID, fmt.Sprintf("caption %d", i+1), sc.URL)
		if err != nil {
			return nil, err
		}
		out = append(out, &coordinatorv1.Caption{Url: u, Presigned: presigned, Language: sc.Language, Format: sc.Format})
	}
	return out, nil
}

// refuseInput fails a just-claimed job whose input (or caption file: what
// says which, for the job's error) is outside its organization's scope,
// for good: retrying cannot make the input
// admissible. Nothing is presigned and the worker gets no job.
func (c *Coordinator) refuseInput(ctx context.Context, j store.ClaimedJob, token, what string, refusal error) error {
	c.log.WarnContext(ctx, "refused to presign a job input outside its organization's storage; the job failed. "+
		"The API checks inputs at submission: find what changed the job or asset row, or whether a storage grant was revoked",
		slog.String("job_id", j.ID.String()), slog.String("org_id", j.OrgID.String()), slog.String("pool_id", j.PoolID), slog.Any("error", refusal))
	var refused *objscope.Refusal
	msg := "input refused at claim"
	if errors.As(refusal, &refused) {
		msg += ": " + what + " " + refused.Error()
	}
	if err := c.failAtClaim(ctx, j, token, msg, false); err != nil {
		return err
	}
	return errInputRefused
}

// retryAtClaim ends the attempt a claim just started because something
// the pod needs could not be prepared (logged with logMsg, recorded on the
// job as jobMsg): the job is retried after its backoff, and the caller's
// Claim answers err's status. When the pod left meanwhile (which may be
// why preparing failed) the job is handed back instead (unlessGone): the
// attempt was not the job's fault.
func (c *Coordinator) retryAtClaim(ctx context.Context, j store.ClaimedJob, token string, err error, logMsg, jobMsg string) error {
	if gone := c.unlessGone(ctx, j.Job, token); gone != nil {
		return gone
	}
	c.log.ErrorContext(ctx, logMsg, slog.String("job_id", j.ID.String()), slog.String("org_id", j.OrgID.String()), slog.Any("error", err))
	if ferr := c.failAtClaim(ctx, j, token, jobMsg, true); ferr != nil {
		return ferr
	}
	return c.toStatus(ctx, "Claim", err)
}

// failAtClaim ends the attempt a claim just started, before the worker
// sees the job. If that fails the job stays running; Stale Job Recovery
// retries it when its lease lapses, and the next claim checks it again.
func (c *Coordinator) failAtClaim(ctx context.Context, j store.ClaimedJob, token, msg string, retryable bool) error {
	failed, outcome, err := c.store.FailJob(context.WithoutCancel(ctx), j.ID, j.PoolID, hashToken(token), msg, retryable, false, c.policy())
	if err != nil {
		return c.toStatus(ctx, "Claim", fmt.Errorf("fail job %s at claim: %w", j.ID, err))
	}
	c.afterFail(ctx, failed, outcome)
	return nil
}
