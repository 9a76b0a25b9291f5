package store

import (
	"context"

	"github.com/google/uuid"
)

// PoolActivity is what a pool is doing right now, as one organization may
// see it.
type PoolActivity struct {
	// InFlight counts the organization's jobs running on the pool (a
	// chunked job once, however many of its parts run).
	InFlight int64
	// Workers counts the pool's live workers (online or draining); nil
	// for a pool the organization does not own: the shared pool's fleet is
	// the platform's, not a tenant's, to count.
	Workers *int64
}

// PoolActivity answers p's activity for orgID.
func (s *Store) PoolActivity(ctx context.Context, orgID uuid.UUID, p Pool) (PoolActivity, error) {
	owned := p.OrgID != nil && *p.OrgID == orgID
	var a PoolActivity
	var workers int64
	err := s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM jobs WHERE org_id = $1 AND pool_id = $2 AND status = 'running' AND parent_id IS NULL),
			CASE WHEN $3 THEN (SELECT count(*) FROM workers WHERE pool_id = $2 AND status IN ('online', 'draining')) ELSE 0 END`,
		orgID, p.ID, owned).Scan(&a.InFlight, &workers)
	if err != nil {
		return PoolActivity{}, mapErr(err, "pool activity")
	}
	if owned {
		a.Workers = &workers
	}
	return a, nil
}
