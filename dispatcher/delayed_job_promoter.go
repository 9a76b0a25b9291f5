package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// PromoteDelayed moves due retries from the delayed set back onto their
// lists. Taking ids out of the set is one atomic Lua step, so two replicas
// never promote the same id; an id lost between that step and the push is
// found again by the queue reconciler.
func (s *Services) PromoteDelayed(ctx context.Context) (int, error) {
	raw, err := s.c.queue.TakeDue(ctx, s.c.cfg.Clock.Now(), s.cfg.Batch)
	if err != nil || len(raw) == 0 {
		return 0, err
	}
	ids := make([]uuid.UUID, 0, len(raw))
	for _, r := range raw {
		if id, err := uuid.Parse(r); err == nil {
			ids = append(ids, id)
		}
	}
	jobs, err := s.c.store.PromoteRetries(ctx, ids, s.c.cfg.Clock.Now())
	if err != nil {
		return 0, fmt.Errorf("delayed job promoter: %w", err)
	}
	s.push(ctx, jobs)
	return len(jobs), nil
}

func (s *Services) push(ctx context.Context, jobs []store.Job) {
	orgs := make([]uuid.UUID, 0, len(jobs))
	for _, j := range jobs {
		if !slices.Contains(orgs, j.OrgID) {
			orgs = append(orgs, j.OrgID)
		}
	}
	tenants, err := queue.Tenants(ctx, s.c.store, orgs)
	if err != nil {
		s.c.log.WarnContext(ctx, "share weights not read; promoted jobs are queued with the weights redis holds and the queue reconciler sets them, check Postgres", slog.Any("error", err))
	}
	for _, j := range jobs {
		if err := s.c.queue.Push(ctx, j.PoolID, j.Lane, tenants[j.OrgID], j.ID.String(), j.Priority); err != nil {
			s.c.log.WarnContext(ctx, "promoted job not pushed; the queue reconciler will push it", slog.String("job_id", j.ID.String()), slog.Any("error", err))
		}
	}
}
