package dispatcher

import (
	"context"
	"math"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func parseJobID(op, raw string) (uuid.UUID, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, status.Error(codes.InvalidArgument, op+": job_id must be a job id (UUID)")
	}
	return id, nil
}

// Heartbeat extends the lease of a held job and records its progress.
func (c *Coordinator) Heartbeat(ctx context.Context, req *coordinatorv1.HeartbeatRequest) (*coordinatorv1.HeartbeatResponse, error) {
	id, err := parseJobID("Heartbeat", req.GetJobId())
	if err != nil {
		return nil, err
	}
	p := req.GetProgress()
	if math.IsNaN(p) || p < 0 || p > 1 {
		return nil, status.Error(codes.InvalidArgument, "Heartbeat: progress must be between 0 and 1")
	}
	tok, err := claimTokenHash(ctx)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Clock.Now()
	lease := now.Add(c.cfg.Lease)
	res, err := c.heartbeats.Do(ctx, store.HeartbeatRequest{JobID: id, PoolID: poolOf(ctx), TokenHash: tok, Progress: p, Now: now, LeaseUntil: lease})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return nil, c.toStatus(ctx, "Heartbeat", err)
	}
	j := res.Job
	if res.Cancelled {
		return &coordinatorv1.HeartbeatResponse{Cancel: true}, nil
	}
	c.emit(ctx, j, "job.progress", map[string]any{"progress": p})
	if j.ParentID != nil {
		c.rollUpProgress(ctx, j)
	}
	return &coordinatorv1.HeartbeatResponse{LeaseExpiresUnixMs: lease.UnixMilli()}, nil
}

// heartbeatKeys keeps two heartbeats of one job out of one batch.
func heartbeatKeys(r store.HeartbeatRequest) []string { return []string{r.JobID.String()} }
