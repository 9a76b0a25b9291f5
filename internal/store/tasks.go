package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// What a row of jobs does (jobs.task): a job a customer submitted, or one
// task of a split job (docs/design/0028-chunked-encoding.md).
// The words are the coordinator protocol's (Job.task).
const (
	TaskJob    = coordinatorv1.TaskJob
	TaskChunk  = coordinatorv1.TaskChunk  // every video rendition of one range of the input
	TaskWhole  = coordinatorv1.TaskWhole  // what is encoded once over the whole input: audio, subtitles, images
	TaskStitch = coordinatorv1.TaskStitch // the manifests over the parts, then the job's outputs
)

// ChunkRange is a chunk task's range of the input and its place in the
// plan: Start and End in seconds, FirstSegment the number of its first
// media segment in the whole encode.
type ChunkRange struct {
	Index        int     `json:"index"`
	Start        float64 `json:"start_seconds"`
	End          float64 `json:"end_seconds"`
	FirstSegment int     `json:"first_segment"`
	// NextSegment is the next chunk's FirstSegment: the chunk writes the
	// segments from FirstSegment up to, not including, it (0: the last
	// chunk, which writes to the end).
	NextSegment int `json:"next_segment,omitempty"`
}

// TaskData is what a task needs beyond its parent's columns (jobs.task_data):
// the input's probe as the splitting pod made it, and a chunk's range.
type TaskData struct {
	Media json.RawMessage `json:"media"`
	Chunk *ChunkRange     `json:"chunk,omitempty"`
}

// Split is a held job's plan of tasks: one per chunk, plus the whole-input
// task when Whole, all sharing Media.
type Split struct {
	Chunks []ChunkRange
	Whole  bool
	Media  json.RawMessage
	// Admit, when set, is asked about the job as SplitJob locked it
	// (before anything is written): an error refuses the split.
	Admit func(Job) error
}

// ErrNotSplittable means the held job is a task already, or was split.
var ErrNotSplittable = errors.New("job cannot be split")

// SplitJob turns a held running job into its tasks, in one transaction: the
// tasks are inserted queued on the job's pool and lane (copies of its
// input, spec and limits), and the job stays running with no worker, claim
// or lease of its own (so no lease lapses on it, and its former holder can
// no longer heartbeat, complete or fail it) until AdvanceParent finishes
// it. It returns the tasks, for the caller to push.
func (s *Store) SplitJob(ctx context.Context, id uuid.UUID, pool string, tokenHash []byte, plan Split, now time.Time) (Job, []Job, error) {
	var (
		parent Job
		tasks  []Job
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		j, _, err := heldJob(ctx, tx, id, pool, tokenHash)
		if err != nil {
			return err
		}
		if j.Status != JobRunning {
			return &NotRunningError{Status: j.Status}
		}
		if j.Task != TaskJob {
			return fmt.Errorf("job %s is a %s task: %w", id, j.Task, ErrNotSplittable)
		}
		if plan.Admit != nil {
			if err := plan.Admit(j); err != nil {
				return err
			}
		}
		var (
			ids   []uuid.UUID
			kinds []string
			data  []string
		)
		add := func(kind string, c *ChunkRange) error {
			b, err := json.Marshal(TaskData{Media: plan.Media, Chunk: c})
			if err != nil {
				return fmt.Errorf("task data: %w", err)
			}
			ids, kinds, data = append(ids, newID()), append(kinds, kind), append(data, string(b))
			return nil
		}
		for i := range plan.Chunks {
			if err := add(TaskChunk, &plan.Chunks[i]); err != nil {
				return err
			}
		}
		if plan.Whole {
			if err := add(TaskWhole, nil); err != nil {
				return err
			}
		}
		// A job split before (it failed, and its batch retried it) starts
		// over: its old tasks, all finished, make way for the new plan.
		// Their usage records stay.
		if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE parent_id = $1 AND status IN ('completed', 'failed', 'cancelled')`, j.ID); err != nil {
			return mapErr(err, "old tasks")
		}
		if tasks, err = insertTasks(ctx, tx, j.ID, ids, kinds, data, now); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `UPDATE jobs SET worker_id = NULL, claim_token_hash = NULL, lease_expires_at = NULL,
				progress = 0, parts_pending = true, updated_at = $2
			WHERE id = $1 RETURNING `+jobColumns, j.ID, now)
		if parent, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job]); err != nil {
			return mapErr(err, "split job")
		}
		if err := clearWorker(ctx, tx, j); err != nil {
			return err
		}
		return insertJobEvent(ctx, tx, parent, "job.split", map[string]any{"chunks": len(plan.Chunks), "whole": plan.Whole})
	})
	return parent, tasks, err
}

// Advance is what AdvanceParent did to a split job.
type Advance struct {
	// Parent is the job as AdvanceParent left it (zero when it had
	// nothing to advance: not split, or finished already).
	Parent Job
	// Stitch is the stitch task it queued, for the caller to push.
	Stitch *Job
	// Cancelled are the tasks it cancelled because another failed.
	Cancelled []Job
}

// taskState is one task of a parent, as AdvanceParent reads it.
type taskState struct {
	ID     uuid.UUID       `db:"id"`
	Task   string          `db:"task"`
	Status string          `db:"status"`
	Index  *int            `db:"idx"`
	Error  *string         `db:"error"`
	Usage  json.RawMessage `db:"usage"`
	Out    json.RawMessage `db:"outputs"`
}

// AdvanceParent moves the split job parentID on from the state of its
// tasks, in one transaction holding the job's row: a failed task fails the
// job with that task's reason and cancels the others; when every chunk and
// the whole-input task have completed it queues the stitch task (once:
// one stitch task per parent); when the stitch task has completed it
// completes the job with the stitched outputs and the sum of every task's
// usage. Otherwise it sets the job's progress to the share of its tasks
// done. Calling it again changes nothing, so every completion or failure
// of a task calls it, and so does Stale Job Recovery for parents that a
// crash left waiting (StalledParents).
func (s *Store) AdvanceParent(ctx context.Context, parentID uuid.UUID, now time.Time) (Advance, error) {
	var out Advance
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND task = 'job' FOR UPDATE`, parentID)
		parent, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "split job")
		}
		if parent.Terminal() {
			return nil
		}
		rows, _ = tx.Query(ctx, `SELECT id, task, status, (task_data -> 'chunk' ->> 'index')::int AS idx, error, usage, outputs
			FROM jobs WHERE parent_id = $1 ORDER BY task, idx`, parentID)
		tasks, err := pgx.CollectRows(rows, pgx.RowToStructByName[taskState])
		if err != nil {
			return mapErr(err, "tasks")
		}
		if len(tasks) == 0 {
			return nil // not split
		}
		var (
			stitch      *taskState
			parts, done int
			failed      *taskState
		)
		for i, t := range tasks {
			switch {
			case t.Status == JobFailed && failed == nil:
				failed = &tasks[i]
			case t.Task == TaskStitch:
				stitch = &tasks[i]
			case t.Status == JobCompleted:
				parts, done = parts+1, done+1
			default:
				parts++
			}
		}
		switch {
		case failed != nil:
			out.Parent, out.Cancelled, err = failSplitJob(ctx, tx, parent, *failed, now)
			return err
		case stitch != nil && stitch.Status == JobCompleted:
			out.Parent, err = completeSplitJob(ctx, tx, parent, stitch.Out, now)
			return err
		case stitch == nil && done == parts:
			st, err := queueStitch(ctx, tx, parent, now)
			if err != nil {
				return err
			}
			out.Stitch = &st
		}
		if _, err := tx.Exec(ctx, rollUpProgressSQL, parentID, now); err != nil {
			return mapErr(err, "split job")
		}
		rows, _ = tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, parentID)
		out.Parent, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		return mapErr(err, "split job")
	})
	return out, err
}

// rollUpProgressSQL sets running split job $1's progress from its parts
// (the chunks and the whole-input task, each counted alike: chunks are
// about equally long, and the whole-input task runs beside them): 95 % of
// their mean progress, a completed part counting as done. The stitch task
// is short and has the last 5 %. Progress never goes back: a chunk that
// starts again after a lost pod does not undo what the job showed, and a
// heartbeat that changes nothing writes nothing.
const rollUpProgressSQL = `UPDATE jobs p SET progress = GREATEST(p.progress, 0.95 * s.mean), updated_at = $2
	FROM (SELECT avg(CASE WHEN t.status = 'completed' THEN 1 ELSE t.progress END) AS mean
		FROM jobs t WHERE t.parent_id = $1 AND t.task <> 'stitch') s
	WHERE p.id = $1 AND p.task = 'job' AND p.status = 'running' AND 0.95 * s.mean > p.progress`

// RollUpProgress sets the running split job parentID's progress from its
// parts' progress as their heartbeats report it, and returns it (ok false
// when that does not move it forward, or the job is not a running split
// job: nothing is written then).
func (s *Store) RollUpProgress(ctx context.Context, parentID uuid.UUID, now time.Time) (progress float64, ok bool, err error) {
	err = s.pool.QueryRow(ctx, rollUpProgressSQL+` RETURNING p.progress`, parentID, now).Scan(&progress)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("roll up the progress of split job %s: %w", parentID, err)
	}
	return progress, true, nil
}

// taskName names a task in errors and events: "chunk 3", "the whole-input
// task", "the stitch task".
func (t taskState) name() string {
	switch {
	case t.Task == TaskChunk && t.Index != nil:
		return fmt.Sprintf("chunk %d", *t.Index)
	case t.Task == TaskWhole:
		return "the whole-input task"
	}
	return "the " + t.Task + " task"
}

// failSplitJob fails parent because task failed for good, and cancels
// its unfinished tasks.
func failSplitJob(ctx context.Context, tx pgx.Tx, parent Job, task taskState, now time.Time) (Job, []Job, error) {
	msg := task.name() + " failed"
	if task.Error != nil {
		msg += ": " + *task.Error
	}
	rows, _ := tx.Query(ctx, `UPDATE jobs SET status = 'failed', error = $2, finished_at = $3, updated_at = $3,
			lease_expires_at = NULL, run_after = NULL
		WHERE id = $1 RETURNING `+jobColumns, parent.ID, msg, now)
	failed, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, nil, mapErr(err, "fail split job")
	}
	cancelled, err := cancelTasks(ctx, tx, parent.ID, msg, now)
	if err != nil {
		return Job{}, nil, err
	}
	if err := insertUsage(ctx, tx, failed, JobFailed, Usage{}, now); err != nil {
		return Job{}, nil, err
	}
	return failed, cancelled, insertJobEvent(ctx, tx, failed, "job.failed", map[string]any{"error": msg, "task": task.Task})
}

// completeSplitJob completes parent with the stitch task's outputs (stored
// under the job's own output prefix) and the sum of its tasks' usage. Its
// usage record counts the job; the seconds are in its tasks' records.
func completeSplitJob(ctx context.Context, tx pgx.Tx, parent Job, outputs json.RawMessage, now time.Time) (Job, error) {
	rows, _ := tx.Query(ctx, `
		WITH u AS (
			SELECT COALESCE(sum((usage ->> 'encode_seconds')::float8), 0) AS encode_seconds,
				COALESCE(sum((usage ->> 'output_seconds')::float8), 0) AS output_seconds,
				COALESCE(sum((usage ->> 'gpu_seconds')::float8), 0) AS gpu_seconds,
				COALESCE(max(usage ->> 'accelerator'), 'cpu') AS accelerator
			FROM jobs WHERE parent_id = $1 AND status = 'completed')
		UPDATE jobs SET status = 'completed', outputs = $2, progress = 1, finished_at = $3, updated_at = $3,
			usage = jsonb_build_object('encode_seconds', u.encode_seconds, 'output_seconds', u.output_seconds,
				'gpu_seconds', u.gpu_seconds, 'accelerator', u.accelerator)
		FROM u WHERE id = $1 RETURNING `+prefixed("jobs.", jobColumns), parent.ID, outputs, now)
	done, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, mapErr(err, "complete split job")
	}
	if err := insertUsage(ctx, tx, done, JobCompleted, Usage{}, now); err != nil {
		return Job{}, err
	}
	return done, insertJobEvent(ctx, tx, done, "job.completed", map[string]any{"usage": done.Usage})
}

// insertTasks inserts tasks of parent, queued on its pool, lane and
// priority with copies of its input, spec and limits: one per element of
// the parallel ids, kinds and data (task_data documents, as JSON text).
func insertTasks(ctx context.Context, tx pgx.Tx, parent uuid.UUID, ids []uuid.UUID, kinds, data []string, now time.Time) ([]Job, error) {
	rows, _ := tx.Query(ctx, `
		INSERT INTO jobs (id, org_id, pool_id, lane, priority, max_attempts, input_asset_id, input_url, captions,
			workflow_id, spec, metadata, parent_id, task, task_data, created_at, updated_at)
		SELECT t.id, p.org_id, p.pool_id, p.lane, p.priority, p.max_attempts, p.input_asset_id, p.input_url, p.captions,
			p.workflow_id, p.spec, p.metadata, p.id, t.task, t.data::jsonb, $5, $5
		FROM jobs p, unnest($2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS t (id, task, data, ord)
		WHERE p.id = $1
		ORDER BY t.ord
		RETURNING `+jobColumns, parent, ids, kinds, data, now)
	tasks, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	return tasks, mapErr(err, "tasks")
}

// queueStitch inserts parent's stitch task, queued, with the probe its
// parts were given.
func queueStitch(ctx context.Context, tx pgx.Tx, parent Job, now time.Time) (Job, error) {
	var data string
	if err := tx.QueryRow(ctx, `SELECT jsonb_build_object('media', task_data -> 'media')::text FROM jobs WHERE parent_id = $1 LIMIT 1`,
		parent.ID).Scan(&data); err != nil {
		return Job{}, mapErr(err, "stitch task")
	}
	st, err := insertTasks(ctx, tx, parent.ID, []uuid.UUID{newID()}, []string{TaskStitch}, []string{data}, now)
	if err != nil {
		return Job{}, err
	}
	return st[0], insertJobEvent(ctx, tx, parent, "job.stitching", map[string]any{"task_id": st[0].ID})
}

// cancelTasks cancels every unfinished task of parent, saying why, and
// returns them, in one statement however many there are: each with its
// usage record (as insertUsage writes it; no job counted: a task is not a
// job) and its worker's current job cleared (as clearWorker does). A
// running task's worker learns it at its next heartbeat.
func cancelTasks(ctx context.Context, tx pgx.Tx, parent uuid.UUID, why string, now time.Time) ([]Job, error) {
	rows, _ := tx.Query(ctx, `
		WITH prev AS (
			SELECT id FROM jobs WHERE parent_id = $1 AND status IN ('queued', 'running', 'retry_wait') FOR UPDATE),
		c AS (
			UPDATE jobs SET status = 'cancelled', error = $2, finished_at = $3, updated_at = $3,
				lease_expires_at = NULL, run_after = NULL
			FROM prev WHERE jobs.id = prev.id
			RETURNING `+prefixed("jobs.", jobColumns)+`),
		ur AS (
			INSERT INTO usage_records (org_id, job_id, day, status, accelerator, parent_job_id)
			SELECT org_id, id, $4::date, 'cancelled', $5::text, parent_id FROM c
			ON CONFLICT (job_id) DO NOTHING),
		wk AS (
			UPDATE workers SET current_job_id = NULL FROM c
			WHERE workers.id = c.worker_id AND workers.current_job_id = c.id)
		SELECT `+jobColumns+` FROM c`, parent, why, now, now.UTC().Truncate(24*time.Hour), Usage{}.accelerator())
	cancelled, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	return cancelled, mapErr(err, "cancel tasks")
}

// TaskPart is one finished part of a split job, for its stitch task: the
// task, its range (chunks) and the outputs it recorded.
type TaskPart struct {
	Task    string
	Chunk   *ChunkRange
	Outputs json.RawMessage
}

// TaskParts returns the completed chunk and whole-input tasks of parent,
// chunks in index order, then the whole-input task.
func (s *Store) TaskParts(ctx context.Context, parent uuid.UUID) ([]TaskPart, error) {
	rows, _ := s.pool.Query(ctx, `SELECT task, task_data, outputs FROM jobs
		WHERE parent_id = $1 AND task IN ('chunk', 'whole') AND status = 'completed'
		ORDER BY task, (task_data -> 'chunk' ->> 'index')::int`, parent)
	var out []TaskPart
	for rows.Next() {
		var (
			p    TaskPart
			data []byte
		)
		if err := rows.Scan(&p.Task, &data, &p.Outputs); err != nil {
			rows.Close()
			return nil, mapErr(err, "task parts")
		}
		var td TaskData
		if err := json.Unmarshal(data, &td); err != nil {
			rows.Close()
			return nil, fmt.Errorf("task parts: task data: %w", err)
		}
		p.Chunk = td.Chunk
		out = append(out, p)
	}
	return out, mapErr(rows.Err(), "task parts")
}

// StalledParents lists split jobs (at most limit) that wait on nothing: all
// their tasks finished, yet the job is running. A coordinator that stopped
// between a task's completion and AdvanceParent leaves one; Stale Job
// Recovery advances them.
func (s *Store) StalledParents(ctx context.Context, limit int) ([]uuid.UUID, error) {
	rows, _ := s.pool.Query(ctx, `SELECT p.id FROM jobs p
		WHERE p.status = 'running' AND p.task = 'job' AND p.lease_expires_at IS NULL
			AND EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = p.id)
			AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = p.id AND c.status IN ('queued', 'running', 'retry_wait'))
		LIMIT $1`, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, mapErr(err, "stalled split jobs")
}

// PartsToDrop lists split jobs (at most limit) that finished before
// before and still owe the clean-up of their parts' files.
func (s *Store) PartsToDrop(ctx context.Context, before time.Time, limit int) ([]Job, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE parts_pending AND finished_at < $1 AND status IN ('completed', 'failed', 'cancelled')
		ORDER BY finished_at LIMIT $2`, before, limit)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	return js, mapErr(err, "split jobs with parts to drop")
}

// TakePartsDrop takes on the clean-up of the split job id's parts: it
// clears the job's debt if the job is still finished, and reports whether
// it did (false: settled already, or the job runs again, retried, and its
// files are its own again). The caller deletes the files, and gives the
// debt back (ReturnPartsDrop) if it could not.
func (s *Store) TakePartsDrop(ctx context.Context, id uuid.UUID) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET parts_pending = false
		WHERE id = $1 AND parts_pending AND status IN ('completed', 'failed', 'cancelled')`, id)
	if err != nil {
		return false, fmt.Errorf("take the clean-up of split job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReturnPartsDrop gives back the clean-up TakePartsDrop took, for the
// recovery loop to try again.
func (s *Store) ReturnPartsDrop(ctx context.Context, id uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, `UPDATE jobs SET parts_pending = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("give back the clean-up of split job %s: %w", id, err)
	}
	return nil
}

// Tasks returns the tasks of the organization's split job parent: chunks
// in index order, then the whole-input and stitch tasks.
func (s *Store) Tasks(ctx context.Context, orgID, parent uuid.UUID) ([]Job, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE parent_id = $1 AND org_id = $2
		ORDER BY task = 'stitch', task = 'whole', (task_data -> 'chunk' ->> 'index')::int`, parent, orgID)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	return ts, mapErr(err, "tasks")
}
