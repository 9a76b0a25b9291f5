package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Worker statuses.
const (
	WorkerOnline   = "online"
	WorkerDraining = "draining"
	WorkerEvicted  = "evicted"
	WorkerOffline  = "offline"
)

// Worker is an encode pod the coordinator has seen.
type Worker struct {
	ID              string          `db:"id"`
	PoolID          string          `db:"pool_id"`
	Lane            string          `db:"lane"`
	Node            string          `db:"node"`
	Capabilities    json.RawMessage `db:"capabilities"`
	Status          string          `db:"status"`
	CurrentJobID    *uuid.UUID      `db:"current_job_id"`
	RegisteredAt    time.Time       `db:"registered_at"`
	LastHeartbeatAt time.Time       `db:"last_heartbeat_at"`
}

const workerColumns = `id, pool_id, lane, node, capabilities, status, current_job_id, registered_at, last_heartbeat_at`

// UpsertWorker registers a worker or refreshes its heartbeat. A drained or
// evicted worker keeps that status.
func (s *Store) UpsertWorker(ctx context.Context, w Worker) (Worker, error) {
	if w.Capabilities == nil {
		w.Capabilities = json.RawMessage(`{}`)
	}
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO workers (id, pool_id, lane, node, capabilities, current_job_id)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, capabilities = EXCLUDED.capabilities,
			current_job_id = EXCLUDED.current_job_id, last_heartbeat_at = now(),
			status = CASE WHEN workers.status = 'offline' THEN 'online' ELSE workers.status END
		RETURNING `+workerColumns, w.ID, w.PoolID, w.Lane, w.Node, w.Capabilities, w.CurrentJobID)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Worker])
	return out, mapErr(err, "worker")
}

// ListWorkers lists workers of the organization's own pools, or of every
// pool when all is set (SuperAdmin's fleet view). Workers of the shared pool
// serve every tenant, so only the platform sees them.
func (s *Store) ListWorkers(ctx context.Context, orgID uuid.UUID, all bool) ([]Worker, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+prefixed("w.", workerColumns)+` FROM workers w
		JOIN worker_pools p ON p.id = w.pool_id
		WHERE $2 OR p.org_id = $1 ORDER BY w.registered_at DESC, w.id`, orgID, all)
	ws, err := pgx.CollectRows(rows, pgx.RowToStructByName[Worker])
	return ws, mapErr(err, "workers")
}

// DrainWorker stops a worker from claiming more; its current job finishes.
func (s *Store) DrainWorker(ctx context.Context, id string) (Worker, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE workers SET status = 'draining'
		WHERE id = $1 AND status IN ('online', 'draining') RETURNING `+workerColumns, id)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Worker])
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.getWorker(ctx, id); gerr != nil {
			return Worker{}, gerr
		}
		return Worker{}, conflict("worker %s is evicted or offline", id)
	}
	return w, mapErr(err, "worker")
}

// EvictWorker stops a worker and puts its running jobs back in the queue, in
// one transaction. The requeued jobs are returned so the caller can push
// their ids onto the pool's list after commit.
func (s *Store) EvictWorker(ctx context.Context, id string) (Worker, []Job, error) {
	var (
		out     Worker
		requeue []Job
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE workers SET status = 'evicted', current_job_id = NULL
			WHERE id = $1 RETURNING `+workerColumns, id)
		w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Worker])
		if err != nil {
			return mapErr(err, "worker")
		}
		out = w
		rows, _ = tx.Query(ctx, `UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL,
				claim_token_hash = NULL, progress = 0, updated_at = now()
			WHERE worker_id = $1 AND status = 'running' RETURNING `+jobColumns, id)
		jobs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "job")
		}
		for _, j := range jobs {
			if err := insertJobEvent(ctx, tx, j, "job.requeued", map[string]any{"reason": "worker evicted", "worker_id": id}); err != nil {
				return err
			}
		}
		requeue = jobs
		return nil
	})
	return out, requeue, err
}

func (s *Store) getWorker(ctx context.Context, id string) (Worker, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+workerColumns+` FROM workers WHERE id = $1`, id)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Worker])
	return w, mapErr(err, "worker")
}
