package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Expansion states of a batch (batches.status). What clients see as the
// batch's status also looks at its jobs: see Batch.Phase.
const (
	BatchExpanding = "expanding"
	BatchExpanded  = "expanded"
	BatchCancelled = "cancelled"
	BatchFailed    = "failed"
)

// ErrLeaseLost means another replica took over a batch's expansion, or the
// batch was cancelled meanwhile: the caller stops expanding it.
var ErrLeaseLost = errors.New("batch expansion lease lost")

// Batch is a backfill: one workflow applied to every input of a source,
// expanded into backfill-lane jobs.
type Batch struct {
	ID             uuid.UUID       `db:"id"`
	OrgID          uuid.UUID       `db:"org_id"`
	Key            string          `db:"dedupe_key"`
	PoolID         string          `db:"pool_id"`
	WorkflowID     *uuid.UUID      `db:"workflow_id"`
	Workflow       string          `db:"workflow"`
	Spec           json.RawMessage `db:"spec"`
	Source         json.RawMessage `db:"source"`
	MaxAttempts    int             `db:"max_attempts"`
	MaxConcurrency *int            `db:"max_concurrency"`
	SubmitRate     *float64        `db:"submit_rate"`
	Expansion      string          `db:"status"`
	Expected       int64           `db:"expected"`
	Expanded       int64           `db:"expanded"`
	Skipped        int64           `db:"skipped"`
	Duplicates     int64           `db:"duplicates"`
	LineErrors     json.RawMessage `db:"line_errors"`
	CursorKey      string          `db:"cursor_key"`
	CursorLine     int64           `db:"cursor_line"`
	CursorOffset   int64           `db:"cursor_offset"`
	Error          *string         `db:"error"`
	CreatedAt      time.Time       `db:"created_at"`
	UpdatedAt      time.Time       `db:"updated_at"`
	ExpandedAt     *time.Time      `db:"expanded_at"`
	FinishedAt     *time.Time      `db:"finished_at"`
	// ManifestETag is the manifest's ETag as the submission read it (nil
	// for prefix sources): expansion reads only that version of it.
	ManifestETag *string `db:"manifest_etag"`
}

const batchColumns = `id, org_id, dedupe_key, pool_id, workflow_id, workflow, spec, source, max_attempts,
	max_concurrency, submit_rate, status, expected, expanded, skipped, duplicates, line_errors,
	cursor_key, cursor_line, cursor_offset, error, created_at, updated_at, expanded_at, finished_at, manifest_etag`

// Limited reports whether the batch's jobs wait (held) for release under a
// concurrency or rate cap instead of going to Redis as they are created.
func (b Batch) Limited() bool { return b.MaxConcurrency != nil || b.SubmitRate != nil }

// BatchCounts counts a batch's jobs by status. Queued includes jobs waiting
// for a retry and Held (created, not yet released under the batch's caps).
type BatchCounts struct {
	Total     int64
	Queued    int64
	Held      int64
	Running   int64
	Completed int64
	Failed    int64
	Cancelled int64
}

// Batch phases as clients see them.
const (
	PhaseExpanding = "expanding"
	PhaseRunning   = "running"
	PhaseCompleted = "completed"
	PhaseCancelled = "cancelled"
	PhaseFailed    = "failed"
)

// Phase is the batch's status for clients: expanding while inputs are still
// being turned into jobs, running until every job finished, then completed.
func (b Batch) Phase(c BatchCounts) string {
	switch {
	case b.Expansion == BatchCancelled:
		return PhaseCancelled
	case b.Expansion == BatchFailed:
		return PhaseFailed
	case b.Expansion == BatchExpanding:
		return PhaseExpanding
	case c.Queued+c.Running > 0:
		return PhaseRunning
	}
	return PhaseCompleted
}

// ETA estimates when the unfinished jobs will be done from the pace so far
// (finished jobs over the time since the batch was created); nil until a job
// finished or once none is left.
func (b Batch) ETA(c BatchCounts, now time.Time) *time.Time {
	finished := c.Completed + c.Failed
	left := c.Queued + c.Running
	if b.Expansion == BatchExpanding {
		left += max(b.Expected-b.Expanded, 0)
	}
	elapsed := now.Sub(b.CreatedAt)
	if finished == 0 || left == 0 || elapsed <= 0 || b.Expansion == BatchCancelled || b.Expansion == BatchFailed {
		return nil
	}
	eta := now.Add(time.Duration(float64(elapsed) * float64(left) / float64(finished))).Truncate(time.Second)
	return &eta
}

// NewBatch is a validated batch submission whose source was read once:
// Expected inputs, Skipped malformed lines (skip mode) and the first of them.
type NewBatch struct {
	OrgID          uuid.UUID
	Key            string
	RequestHash    []byte
	PoolID         string
	WorkflowID     *uuid.UUID
	Workflow       string
	Spec           json.RawMessage
	Source         json.RawMessage
	MaxAttempts    int
	MaxConcurrency *int
	SubmitRate     *float64
	Expected       int64
	Skipped        int64
	LineErrors     json.RawMessage
	// ManifestETag is the manifest's ETag as counted ("" for prefix
	// sources, or a store that gives none).
	ManifestETag string
}

// CreateBatch records a batch for expansion. A key the organization already
// used returns that batch and created=false (a resubmitted batch resumes, it
// never duplicates), or a conflict when the request differs. The pool and
// workflow must be the organization's, and the batch must fit the
// organization's job quota next to its unfinished jobs and the unexpanded
// rest of its other batches.
func (s *Store) CreateBatch(ctx context.Context, nb NewBatch) (b Batch, created bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The organization row serializes batch creations for the quota check.
		var quota int64
		if err := tx.QueryRow(ctx, `SELECT job_quota FROM organizations WHERE id = $1 FOR UPDATE`, nb.OrgID).Scan(&quota); err != nil {
			return mapErr(err, "organization")
		}
		existing, found, err := batchByKey(ctx, tx, nb.OrgID, nb.Key, nb.RequestHash)
		if err != nil || found {
			b = existing
			return err
		}
		var errs validation.Errors
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM worker_pools WHERE id = $1 AND (org_id = $2 OR org_id IS NULL) FOR SHARE`, nb.PoolID, nb.OrgID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			errs.Add("pool", "no pool %q in this organization", nb.PoolID)
		} else if err != nil {
			return mapErr(err, "pool")
		}
		if nb.WorkflowID != nil {
			err := tx.QueryRow(ctx, `SELECT spec FROM workflows WHERE id = $1 AND org_id = $2`, *nb.WorkflowID, nb.OrgID).Scan(&nb.Spec)
			if errors.Is(err, pgx.ErrNoRows) {
				errs.Add("workflow_id", "no workflow %s in this organization", *nb.WorkflowID)
			} else if err != nil {
				return mapErr(err, "workflow")
			}
		}
		var unfinished, reserved int64
		if err := tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM jobs WHERE org_id = $1 AND status IN ('queued', 'running', 'retry_wait')),
				(SELECT COALESCE(sum(GREATEST(expected - expanded, 0)), 0) FROM batches WHERE org_id = $1 AND status = 'expanding')`,
			nb.OrgID).Scan(&unfinished, &reserved); err != nil {
			return mapErr(err, "quota usage")
		}
		if free := quota - unfinished - reserved; nb.Expected > free {
			errs.Add("source", "the batch has %d inputs but the organization's job quota (%d) leaves room for %d (%d jobs unfinished, %d reserved by expanding batches)",
				nb.Expected, quota, max(free, 0), unfinished, reserved)
		}
		if err := errs.Err(); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO batches (id, org_id, dedupe_key, request_hash, pool_id, workflow_id, workflow, spec, source,
				max_attempts, max_concurrency, submit_rate, expected, skipped, line_errors, manifest_etag)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULLIF($16, ''))
			RETURNING `+batchColumns,
			newID(), nb.OrgID, nb.Key, nb.RequestHash, nb.PoolID, nb.WorkflowID, nb.Workflow, nb.Spec, nb.Source,
			nb.MaxAttempts, nb.MaxConcurrency, nb.SubmitRate, nb.Expected, nb.Skipped, cmpJSON(nb.LineErrors, `[]`), nb.ManifestETag)
		b, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Batch])
		if err != nil {
			return mapErr(err, "batch")
		}
		created = true
		return nil
	})
	if err != nil {
		return Batch{}, false, fmt.Errorf("create batch: %w", err)
	}
	return b, created, nil
}

func cmpJSON(v json.RawMessage, def string) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage(def)
	}
	return v
}

func batchByKey(ctx context.Context, tx pgx.Tx, orgID uuid.UUID, key string, hash []byte) (Batch, bool, error) {
	rows, _ := tx.Query(ctx, `SELECT `+batchColumns+`, request_hash FROM batches WHERE org_id = $1 AND dedupe_key = $2`, orgID, key)
	var (
		b      Batch
		stored []byte
		found  bool
	)
	for rows.Next() {
		found = true
		if err := rows.Scan(&b.ID, &b.OrgID, &b.Key, &b.PoolID, &b.WorkflowID, &b.Workflow, &b.Spec, &b.Source, &b.MaxAttempts,
			&b.MaxConcurrency, &b.SubmitRate, &b.Expansion, &b.Expected, &b.Expanded, &b.Skipped, &b.Duplicates, &b.LineErrors,
			&b.CursorKey, &b.CursorLine, &b.CursorOffset, &b.Error, &b.CreatedAt, &b.UpdatedAt, &b.ExpandedAt, &b.FinishedAt, &b.ManifestETag, &stored); err != nil {
			rows.Close()
			return Batch{}, false, mapErr(err, "batch")
		}
	}
	if err := rows.Err(); err != nil {
		return Batch{}, false, mapErr(err, "batch")
	}
	if found && !bytes.Equal(stored, hash) {
		return Batch{}, false, conflict("batch key %q was already used with a different request", key)
	}
	return b, found, nil
}

// GetBatch returns one of the organization's batches and its job counts.
func (s *Store) GetBatch(ctx context.Context, orgID, id uuid.UUID) (Batch, BatchCounts, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 AND org_id = $2`, id, orgID)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Batch])
	if err != nil {
		return Batch{}, BatchCounts{}, mapErr(err, "batch")
	}
	c, err := s.batchCounts(ctx, id)
	return b, c, err
}

func (s *Store) batchCounts(ctx context.Context, id uuid.UUID) (BatchCounts, error) {
	var c BatchCounts
	rows, err := s.pool.Query(ctx, `SELECT status, held, count(*) FROM jobs WHERE batch_id = $1 GROUP BY status, held`, id)
	if err != nil {
		return c, mapErr(err, "batch counts")
	}
	var (
		status string
		held   bool
		n      int64
	)
	_, err = pgx.ForEachRow(rows, []any{&status, &held, &n}, func() error {
		c.Total += n
		switch status {
		case JobQueued, JobRetryWait:
			c.Queued += n
			if held {
				c.Held += n
			}
		case JobRunning:
			c.Running += n
		case JobCompleted:
			c.Completed += n
		case JobFailed:
			c.Failed += n
		case JobCancelled:
			c.Cancelled += n
		}
		return nil
	})
	return c, mapErr(err, "batch counts")
}

// ListBatches lists the organization's batches newest first.
func (s *Store) ListBatches(ctx context.Context, orgID uuid.UUID, page Page) ([]Batch, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+batchColumns+` FROM batches WHERE org_id = $1
		AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, orgID, after, afterID, page.limit())
	bs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Batch])
	return bs, mapErr(err, "batches")
}

// ClaimExpansion takes the oldest expanding batch whose expansion lease is
// free or lapsed, for owner until leaseUntil. Rows are taken with SKIP
// LOCKED and the lease is checked on every chunk, so two replicas never
// expand the same batch at once, and a crashed replica's batch is resumed
// from its persisted cursor once the lease lapses.
func (s *Store) ClaimExpansion(ctx context.Context, owner string, now, leaseUntil time.Time) (Batch, bool, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE batches SET lease_owner = $1, lease_expires_at = $3, updated_at = $2
		WHERE id = (SELECT id FROM batches WHERE status = 'expanding' AND (lease_expires_at IS NULL OR lease_expires_at < $2)
			ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+batchColumns, owner, now, leaseUntil)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Batch])
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, false, nil
	}
	if err != nil {
		return Batch{}, false, mapErr(err, "claim batch expansion")
	}
	return b, true, nil
}

// BatchCursor is how far a batch's expansion got (see backfill.Cursor).
type BatchCursor struct {
	Key          string
	Line, Offset int64
}

// ExpandChunk creates the jobs of one chunk of inputs in one transaction,
// while owner holds the lease (else ErrLeaseLost). Inputs the batch already
// has are skipped (counted as duplicates), so replaying a chunk after a
// crash creates nothing twice. Several chunks of a batch may be in flight at
// once; SaveCursor records how far they all got.
// It returns the ids to push now: none when the batch is limited (its jobs
// are held for the releaser).
func (s *Store) ExpandChunk(ctx context.Context, b Batch, owner string, inputs []string, now, leaseUntil time.Time) (push []QueuedJob, inserted int, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE batches SET lease_expires_at = $3, updated_at = $4
			WHERE id = $1 AND lease_owner = $2 AND status = 'expanding'`, b.ID, owner, leaseUntil, now)
		if err != nil {
			return mapErr(err, "batch lease")
		}
		if tag.RowsAffected() == 0 {
			return ErrLeaseLost
		}
		ids := make([]uuid.UUID, len(inputs))
		for i := range ids {
			ids[i] = newID()
		}
		meta, _ := json.Marshal(map[string]string{"batch_id": b.ID.String()}) // plain strings: cannot fail
		held := b.Limited()
		rows, _ := tx.Query(ctx, `
			INSERT INTO jobs (id, org_id, pool_id, lane, max_attempts, input_url, workflow_id, spec, metadata,
				batch_id, batch_input, held, created_at, updated_at)
			SELECT i.id, $1, $2, 'backfill', $3, i.input, $4, $5, $6, $7, i.input, $8, $9, $9
			FROM unnest($10::uuid[], $11::text[]) AS i (id, input)
			ON CONFLICT (batch_id, batch_input) WHERE batch_id IS NOT NULL DO NOTHING
			RETURNING id`,
			b.OrgID, b.PoolID, b.MaxAttempts, b.WorkflowID, b.Spec, meta, b.ID, held, now, ids, inputs)
		created, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return mapErr(err, "batch jobs")
		}
		inserted = len(created)
		if _, err := tx.Exec(ctx, `UPDATE batches SET expanded = expanded + $2, duplicates = duplicates + $3 WHERE id = $1`,
			b.ID, inserted, len(inputs)-inserted); err != nil {
			return mapErr(err, "batch counters")
		}
		if !held {
			push = make([]QueuedJob, len(created))
			for i, id := range created {
				push[i] = QueuedJob{ID: id, OrgID: b.OrgID, PoolID: b.PoolID, Lane: apiv1.LaneBackfill}
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("expand batch %s: %w", b.ID, err)
	}
	return push, inserted, nil
}

// SaveCursor moves a batch's expansion cursor forward to cur (every chunk
// before it committed), while owner holds the lease. It never moves the
// cursor back, so concurrent savers may commit in any order. Keys compare
// bytewise (COLLATE "C"), as S3 lists them.
func (s *Store) SaveCursor(ctx context.Context, id uuid.UUID, owner string, cur BatchCursor) error {
	_, err := s.pool.Exec(ctx, `UPDATE batches SET cursor_key = $3, cursor_line = $4, cursor_offset = $5
		WHERE id = $1 AND lease_owner = $2 AND status = 'expanding'
		  AND cursor_line <= $4 AND cursor_offset <= $5 AND cursor_key COLLATE "C" <= $3 COLLATE "C"`,
		id, owner, cur.Key, cur.Line, cur.Offset)
	return mapErr(err, "save batch cursor")
}

// FinishExpansion marks a batch fully expanded and frees its lease.
func (s *Store) FinishExpansion(ctx context.Context, id uuid.UUID, owner string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE batches SET status = 'expanded', expanded_at = $3, updated_at = $3,
			lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status = 'expanding'`, id, owner, now)
	if err != nil {
		return mapErr(err, "finish batch expansion")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish expansion of batch %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// ReleaseExpansion gives a batch's lease back after a transient failure, so
// the next round (on any replica) retries from the cursor.
func (s *Store) ReleaseExpansion(ctx context.Context, id uuid.UUID, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE batches SET lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status = 'expanding'`, id, owner)
	return mapErr(err, "release batch expansion")
}

// FailExpansion marks a batch failed for a permanent reason (its source is
// gone) and cancels its jobs that have not started.
func (s *Store) FailExpansion(ctx context.Context, id uuid.UUID, owner, msg string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE batches SET status = 'failed', error = $3, finished_at = $4, updated_at = $4,
			lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status = 'expanding'`, id, owner, msg, now)
	if err != nil {
		return mapErr(err, "fail batch expansion")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("fail expansion of batch %s: %w", id, ErrLeaseLost)
	}
	_, err = s.cancelBatchJobs(ctx, id, now)
	return err
}

// batchChunk bounds the rows one statement of cancel and retry touches, so
// neither holds a million row locks at once.
const batchChunk = 10_000

func (s *Store) cancelBatchJobs(ctx context.Context, id uuid.UUID, now time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `UPDATE jobs SET status = 'cancelled', held = false, finished_at = $2, updated_at = $2,
				run_after = NULL, lease_expires_at = NULL
			WHERE id IN (SELECT id FROM jobs WHERE batch_id = $1 AND status IN ('queued', 'retry_wait')
				LIMIT $3 FOR UPDATE SKIP LOCKED)`, id, now, batchChunk)
		if err != nil {
			return total, mapErr(err, "cancel batch jobs")
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() == 0 {
			return total, nil
		}
	}
}

// CancelBatch stops a batch: its expansion ends and every job that has not
// started is cancelled (running jobs finish). Cancelling again resumes an
// interrupted cancel. A batch whose jobs all finished is a conflict.
func (s *Store) CancelBatch(ctx context.Context, orgID, id uuid.UUID, now time.Time) (Batch, int64, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM batches WHERE id = $1 AND org_id = $2 FOR UPDATE`, id, orgID).Scan(&status); err != nil {
			return mapErr(err, "batch")
		}
		switch status {
		case BatchFailed:
			return conflict("batch already failed; nothing left to cancel")
		case BatchExpanded:
			var unfinished bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE batch_id = $1 AND status IN ('queued', 'running', 'retry_wait'))`, id).Scan(&unfinished); err != nil {
				return mapErr(err, "batch jobs")
			}
			if !unfinished {
				return conflict("batch already completed; nothing left to cancel")
			}
		}
		_, err := tx.Exec(ctx, `UPDATE batches SET status = 'cancelled', finished_at = COALESCE(finished_at, $2), updated_at = $2,
			lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, id, now)
		return mapErr(err, "cancel batch")
	})
	if err != nil {
		return Batch{}, 0, fmt.Errorf("cancel batch %s: %w", id, err)
	}
	n, err := s.cancelBatchJobs(ctx, id, now)
	if err != nil {
		return Batch{}, n, fmt.Errorf("cancel batch %s: %w", id, err)
	}
	b, _, err := s.GetBatch(ctx, orgID, id)
	return b, n, err
}

// RetryFailedBatch queues the batch's failed jobs again with a fresh attempt
// budget, chunk by chunk; fn receives each chunk's ids to push (none for a
// limited batch, whose jobs are held for the releaser). A cancelled batch is
// a conflict.
func (s *Store) RetryFailedBatch(ctx context.Context, orgID, id uuid.UUID, now time.Time, fn func([]QueuedJob) error) (Batch, int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 AND org_id = $2`, id, orgID)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Batch])
	if err != nil {
		return Batch{}, 0, fmt.Errorf("retry batch %s: %w", id, mapErr(err, "batch"))
	}
	if b.Expansion == BatchCancelled || b.Expansion == BatchFailed {
		return Batch{}, 0, fmt.Errorf("retry batch %s: %w", id, conflict("batch is %s", b.Expansion))
	}
	var total int64
	for {
		rows, _ := s.pool.Query(ctx, `UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, finished_at = NULL,
				progress = 0, held = $3, updated_at = $2
			WHERE id IN (SELECT id FROM jobs WHERE batch_id = $1 AND status = 'failed' LIMIT $4 FOR UPDATE SKIP LOCKED)
			RETURNING id, org_id, pool_id, lane, priority`, id, now, b.Limited(), batchChunk)
		js, err := pgx.CollectRows(rows, pgx.RowToStructByName[QueuedJob])
		if err != nil {
			return Batch{}, total, fmt.Errorf("retry batch %s: %w", id, mapErr(err, "batch jobs"))
		}
		total += int64(len(js))
		if len(js) == 0 {
			break
		}
		if !b.Limited() {
			if err := fn(js); err != nil {
				return Batch{}, total, err
			}
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE batches SET finished_at = NULL, updated_at = $2 WHERE id = $1`, id, now); err != nil {
		return Batch{}, total, fmt.Errorf("retry batch %s: %w", id, mapErr(err, "batch"))
	}
	b.FinishedAt = nil
	return b, total, nil
}

// ReleaseHeld releases held jobs of limited batches: for each, as many as
// its max_concurrency leaves room for (released jobs that are queued,
// running or waiting for a retry count against it) and its submit_rate
// allows since its last release (at most one second's worth at once), up to
// limit per batch. Batch rows are taken with SKIP LOCKED, so replicas share
// the work and never double a release. The caller pushes the returned ids;
// a crash before that leaves them queued and unheld, which the queue
// reconciler re-pushes.
func (s *Store) ReleaseHeld(ctx context.Context, now time.Time, limit int) ([]QueuedJob, error) {
	var out []QueuedJob
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		type capped struct {
			ID             uuid.UUID  `db:"id"`
			MaxConcurrency *int       `db:"max_concurrency"`
			SubmitRate     *float64   `db:"submit_rate"`
			ReleasedAt     *time.Time `db:"released_at"`
		}
		rows, _ := tx.Query(ctx, `SELECT id, max_concurrency, submit_rate, released_at FROM batches b
			WHERE status IN ('expanding', 'expanded') AND (max_concurrency IS NOT NULL OR submit_rate IS NOT NULL)
			  AND EXISTS (SELECT 1 FROM jobs WHERE batch_id = b.id AND held)
			ORDER BY created_at FOR UPDATE SKIP LOCKED`)
		batches, err := pgx.CollectRows(rows, pgx.RowToStructByName[capped])
		if err != nil {
			return mapErr(err, "limited batches")
		}
		for _, b := range batches {
			n := limit
			if b.MaxConcurrency != nil {
				var inFlight int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE batch_id = $1 AND NOT held
					AND status IN ('queued', 'running', 'retry_wait')`, b.ID).Scan(&inFlight); err != nil {
					return mapErr(err, "batch in flight")
				}
				n = min(n, *b.MaxConcurrency-inFlight)
			}
			if b.SubmitRate != nil {
				burst := max(1, int(math.Ceil(*b.SubmitRate)))
				budget := burst
				if b.ReleasedAt != nil {
					budget = min(burst, int(math.Floor(*b.SubmitRate*now.Sub(*b.ReleasedAt).Seconds())))
				}
				n = min(n, budget)
			}
			if n <= 0 {
				continue
			}
			rows, _ := tx.Query(ctx, `UPDATE jobs SET held = false, updated_at = $2
				WHERE id IN (SELECT id FROM jobs WHERE batch_id = $1 AND held AND status = 'queued' ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
				RETURNING id, org_id, pool_id, lane, priority`, b.ID, now, n)
			js, err := pgx.CollectRows(rows, pgx.RowToStructByName[QueuedJob])
			if err != nil {
				return mapErr(err, "release batch jobs")
			}
			if len(js) > 0 {
				if _, err := tx.Exec(ctx, `UPDATE batches SET released_at = $2 WHERE id = $1`, b.ID, now); err != nil {
					return mapErr(err, "batch release time")
				}
			}
			out = append(out, js...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release held batch jobs: %w", err)
	}
	return out, nil
}

// BatchByKey returns the organization's batch with key, if any, or a
// conflict when it was created from a different request. The API asks
// before reading a source, so a resubmitted batch resumes at once.
func (s *Store) BatchByKey(ctx context.Context, orgID uuid.UUID, key string, hash []byte) (Batch, bool, error) {
	var (
		b     Batch
		found bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		b, found, err = batchByKey(ctx, tx, orgID, key, hash)
		return err
	})
	return b, found, err
}
