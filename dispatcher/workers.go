package dispatcher

import (
	"context"
	"fmt"
)

// SweepStaleWorkers marks workers offline whose heartbeat lapsed.
func (s *Services) SweepStaleWorkers(ctx context.Context) (int, error) {
	n, err := s.c.store.SweepStaleWorkers(ctx, s.c.cfg.Clock.Now().Add(-s.cfg.WorkerTTL))
	if err != nil {
		return 0, fmt.Errorf("stale worker sweeper: %w", err)
	}
	return int(n), nil
}

// ReapOfflineWorkers deletes workers that have been offline past the grace.
func (s *Services) ReapOfflineWorkers(ctx context.Context) (int, error) {
	n, err := s.c.store.ReapOfflineWorkers(ctx, s.c.cfg.Clock.Now().Add(-s.cfg.OfflineGrace))
	if err != nil {
		return 0, fmt.Errorf("offline worker reaper: %w", err)
	}
	return int(n), nil
}
