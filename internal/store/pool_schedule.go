package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ScheduledPool is what the Schedule Evaluator reads of a pool whose pause
// windows it evaluates: the windows and the state an edge is applied to.
type ScheduledPool struct {
	ID                    string        `db:"id"`
	PauseWindows          []PauseWindow `db:"pause_windows"`
	Status                string        `db:"status"`
	PausedBy              *string       `db:"paused_by"`
	ScheduleEdgeAppliedAt *time.Time    `db:"schedule_edge_applied_at"`
}

// ScheduledPools lists the pools the Schedule Evaluator looks at: those
// with pause windows, and those still paused by a schedule whose windows
// were removed (so that they resume).
func (s *Store) ScheduledPools(ctx context.Context) ([]ScheduledPool, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, pause_windows, status, paused_by, schedule_edge_applied_at FROM worker_pools
		WHERE pause_windows <> '[]'::jsonb OR paused_by = 'schedule' ORDER BY id`)
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByName[ScheduledPool])
	return ps, mapErr(err, "scheduled pools")
}

// ScheduleEdge is one window edge to apply to a pool: the state the
// evaluator read (Read), the edge's instant (At), and the status and
// paused_by the pool takes (Read's own when the edge leaves them alone).
type ScheduleEdge struct {
	Read     ScheduledPool
	At       time.Time
	Status   string
	PausedBy *string
}

// ApplyScheduleEdge records edge e and commits, with its pool event when the
// status changes. The UPDATE is conditional on the row still being as
// e.Read saw it (last applied edge, status, paused_by): of replicas applying
// the same edge exactly one matches, and a manual pause or a window change
// committed since the read makes it match none, so the next round decides
// again. applied is false when it matched none; changed is true when the
// status changed. The caller then sets or clears the Redis pause key and
// publishes the event (never inside the transaction).
func (s *Store) ApplyScheduleEdge(ctx context.Context, e ScheduleEdge) (p Pool, applied, changed bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			UPDATE worker_pools SET status = $5, paused_by = $6, schedule_edge_applied_at = $2, updated_at = now()
			WHERE id = $1 AND schedule_edge_applied_at IS NOT DISTINCT FROM $3::timestamptz
				AND status = $4 AND paused_by IS NOT DISTINCT FROM $7::text
			RETURNING `+poolColumns,
			e.Read.ID, e.At, e.Read.ScheduleEdgeAppliedAt, e.Read.Status, e.Status, e.PausedBy, e.Read.PausedBy)
		got, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
		if err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return mapErr(err, "pool schedule edge")
		}
		p, applied, changed = got, true, got.Status != e.Read.Status
		if changed {
			return insertPoolEvent(ctx, tx, got)
		}
		return nil
	})
	return p, applied, changed, err
}
