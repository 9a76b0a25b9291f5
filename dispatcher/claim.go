package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Claim hands the pod one job of its pool and lane. It pops ids through the
// pause-aware Lua gate and keeps the first one whose conditional UPDATE wins;
// stale and duplicate ids are dropped. With wait > 0 it long-polls.
func (c *Coordinator) Claim(ctx context.Context, req *coordinatorv1.ClaimRequest) (*coordinatorv1.ClaimResponse, error) {
	pool := poolOf(ctx)
	if req.GetPool() != "" && req.GetPool() != pool {
		return nil, status.Error(codes.PermissionDenied, "Claim: the request names another pool than the worker token")
	}
	lane := req.GetLane()
	if lane == "" {
		lane = store.LaneLive
	}
	if lane != store.LaneLive && lane != store.LaneBackfill {
		return nil, status.Error(codes.InvalidArgument, "Claim: lane must be live or backfill")
	}
	pod := req.GetPod()
	if pod == "" || len(pod) > 253 || len(req.GetNode()) > 253 || req.GetWaitMs() < 0 {
		return nil, status.Error(codes.InvalidArgument, "Claim: pod must be 1 to 253 characters, node at most 253, wait_ms at least 0")
	}
	caps, _ := json.Marshal(req.GetCapabilities()) // plain message: cannot fail
	w, err := c.store.RegisterWorker(ctx, store.Worker{ID: pod, PoolID: pool, Lane: lane, Node: req.GetNode(), Capabilities: caps}, c.cfg.Clock.Now())
	if err != nil {
		return nil, c.toStatus(ctx, "Claim", err)
	}
	if w.Status == store.WorkerDraining || w.Status == store.WorkerEvicted {
		return &coordinatorv1.ClaimResponse{}, nil
	}
	wait := min(time.Duration(req.GetWaitMs())*time.Millisecond, c.cfg.MaxWait)
	deadline := c.cfg.Clock.Now().Add(wait)
	for {
		res, id, err := c.queue.Pop(ctx, pool, lane)
		if err != nil {
			return nil, c.toStatus(ctx, "Claim", err)
		}
		switch res {
		case queue.PopPaused:
			return &coordinatorv1.ClaimResponse{}, nil
		case queue.PopJob:
			job, err := c.claim(ctx, id, pool, lane, pod)
			if errors.Is(err, store.ErrNotFound) {
				continue // stale or duplicate id: drop it, pop the next
			}
			if err != nil {
				return nil, err
			}
			return &coordinatorv1.ClaimResponse{Job: job}, nil
		}
		if !c.cfg.Clock.Now().Before(deadline) {
			return &coordinatorv1.ClaimResponse{}, nil
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-c.cfg.Clock.After(min(c.cfg.PollInterval, deadline.Sub(c.cfg.Clock.Now()))):
		}
	}
}

// claim runs the conditional UPDATE for a popped id. ErrNotFound means the id
// was stale; other errors are already gRPC statuses.
func (c *Coordinator) claim(ctx context.Context, rawID, pool, lane, pod string) (*coordinatorv1.Job, error) {
	id, err := uuid.Parse(rawID)
	if err != nil {
		c.log.WarnContext(ctx, "dropped a malformed id from the queue; something other than MpegFlow writes to it",
			slog.String("pool_id", pool), slog.String("value", rawID))
		return nil, store.ErrNotFound
	}
	token := newClaimToken()
	now := c.cfg.Clock.Now()
	lease := now.Add(c.cfg.Lease)
	j, err := c.store.ClaimJob(ctx, id, pool, lane, pod, hashToken(token), now, lease)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		// The id left Redis but the claim did not commit: put it back so
		// the job is not left for the reconciler to find.
		if perr := c.queue.Push(context.WithoutCancel(ctx), pool, lane, rawID, 1); perr != nil {
			c.log.WarnContext(ctx, "claim failed and the id could not be pushed back; the queue reconciler will", slog.String("job_id", rawID), slog.Any("error", perr))
		}
		return nil, c.toStatus(ctx, "Claim", err)
	}
	input, presigned, err := c.inputURL(ctx, j)
	if err != nil {
		// The claim stands; the worker fails the job retryably if it cannot read.
		c.log.ErrorContext(ctx, "presign input failed; check object storage", slog.String("job_id", rawID), slog.Any("error", err))
	}
	c.emit(ctx, j.Job, "job.started", map[string]any{"worker_id": pod, "attempt": j.Attempts})
	var meta map[string]string
	_ = json.Unmarshal(j.Metadata, &meta) // written by the API as a string map
	return &coordinatorv1.Job{
		Id: j.ID.String(), OrgId: j.OrgID.String(), Pool: j.PoolID, Lane: j.Lane, SpecJson: j.Spec,
		InputUrl: input, InputPresigned: presigned, ClaimToken: token, LeaseExpiresUnixMs: lease.UnixMilli(),
		Attempt: int32(j.Attempts), MaxAttempts: int32(j.MaxAttempts), Metadata: meta,
		HeartbeatIntervalMs: int32(c.cfg.HeartbeatInterval.Milliseconds()),
	}, nil
}

// inputURL is where the worker reads the input: a presigned GET for assets
// and s3:// URLs (presigned=true: MpegFlow's own storage), the submitted
// https URL otherwise (the worker fetches it through the SSRF guard).
func (c *Coordinator) inputURL(ctx context.Context, j store.ClaimedJob) (u string, presigned bool, err error) {
	if j.InputObjectKey != "" {
		p, err := c.objects.PresignGet(ctx, j.InputObjectKey)
		return p.URL, true, err
	}
	if j.InputURL == nil {
		return "", false, errors.New("job has no input")
	}
	parsed, err := url.Parse(*j.InputURL)
	if err != nil {
		return "", false, err
	}
	if parsed.Scheme == "s3" {
		p, err := c.objects.PresignGetIn(ctx, parsed.Host, strings.TrimPrefix(parsed.Path, "/"))
		return p.URL, true, err
	}
	return *j.InputURL, false, nil
}
