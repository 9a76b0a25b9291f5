package encoder

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// heartbeat keeps a claimed job's lease alive and carries its progress. A
// cancel answer or SIGTERM cancels the job's context with a cause.
type heartbeat struct {
	w        *Worker
	job      *coordinatorv1.Job
	mu       sync.Mutex
	progress float64
}

func (h *heartbeat) setProgress(p float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = math.Max(h.progress, math.Min(math.Max(p, 0), 1))
}

func (h *heartbeat) current() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.progress
}

func (h *heartbeat) loop(ctx context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}, log *slog.Logger) {
	interval := time.Duration(h.job.GetHeartbeatIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			cancel(ErrPreempted)
			return
		case <-t.C:
		}
		hctx, done := context.WithTimeout(ctx, interval)
		resp, err := h.w.client.Heartbeat(h.w.auth(hctx, h.job.GetClaimToken()), &coordinatorv1.HeartbeatRequest{JobId: h.job.GetId(), Progress: h.current()})
		done()
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "heartbeat failed; retrying at the next interval (the lease lapses if this persists)", slog.Any("error", err))
		case resp.GetCancel():
			cancel(ErrCancelled)
			return
		}
	}
}
