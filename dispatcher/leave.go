package dispatcher

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// Leave takes the calling pod's worker offline as its process exits. The
// worker token names the pool, and only a worker of that pool is touched:
// a pod cannot take another pool's workers offline.
func (c *Coordinator) Leave(ctx context.Context, req *coordinatorv1.LeaveRequest) (*coordinatorv1.LeaveResponse, error) {
	pod := req.GetPod()
	if pod == "" || len(pod) > 253 {
		return nil, status.Error(codes.InvalidArgument, "Leave: pod must be 1 to 253 characters")
	}
	pool := poolOf(ctx)
	left, err := c.store.LeaveWorker(ctx, pod, pool)
	if err != nil {
		return nil, c.toStatus(ctx, "Leave", err)
	}
	if left {
		c.log.DebugContext(ctx, "worker left", slog.String("worker_id", pod), slog.String("pool_id", pool))
	}
	return &coordinatorv1.LeaveResponse{}, nil
}
