package dispatcher

import (
	"context"
	"fmt"
)

// RecoverStaleJobs ends the attempt of every running job whose lease lapsed
// (its worker died, was OOM-killed or lost its network): a retry after a
// backoff while attempts remain, else failed with a readable error. It also
// advances split jobs that a crash left waiting on tasks that all finished,
// and drops the parts' files of finished split jobs (DropSplitParts).
func (s *Services) RecoverStaleJobs(ctx context.Context) (int, error) {
	moved, err := s.c.store.RecoverStaleJobs(ctx, s.c.policy(), s.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("stale job recovery: %w", err)
	}
	for _, t := range moved {
		s.c.afterFail(ctx, t.Job, t.Outcome)
	}
	advanced, err := s.AdvanceStalledParents(ctx)
	if err != nil {
		return len(moved), fmt.Errorf("stale job recovery: %w", err)
	}
	dropped, err := s.DropSplitParts(ctx)
	if err != nil {
		return len(moved) + advanced, fmt.Errorf("stale job recovery: %w", err)
	}
	return len(moved) + advanced + dropped, nil
}
