package dispatcher

import (
	"context"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

var _ telemetry.FleetSource = (*Coordinator)(nil)

// FleetState reads running jobs and workers from Postgres and queue depths
// from Redis, for the metrics endpoint.
func (c *Coordinator) FleetState(ctx context.Context) (telemetry.FleetState, error) {
	inFlight, workers, err := c.store.FleetCounts(ctx)
	if err != nil {
		return telemetry.FleetState{}, err
	}
	pools, err := c.store.ListAllPools(ctx)
	if err != nil {
		return telemetry.FleetState{}, err
	}
	depth := make(map[string]int64, len(pools))
	paused := make(map[string]bool, len(pools))
	for _, p := range pools {
		paused[p.ID] = p.Status == apiv1.PoolPaused
		for _, l := range apiv1.Lanes {
			n, err := c.queue.Len(ctx, p.ID, l)
			if err != nil {
				return telemetry.FleetState{}, err
			}
			depth[p.ID] += n
		}
		if _, ok := inFlight[p.ID]; !ok {
			inFlight[p.ID] = 0
		}
	}
	return telemetry.FleetState{InFlight: inFlight, QueueDepth: depth, Paused: paused, Workers: workers}, nil
}
