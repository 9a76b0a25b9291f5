package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Job statuses, as the API contract names them (the jobs.status column
// holds the same words). A job moves queued → running → completed | failed
// | cancelled, and running → retry_wait → queued when a retryable attempt
// fails.
const (
	JobQueued    = apiv1.JobQueued
	JobRunning   = apiv1.JobRunning
	JobRetryWait = apiv1.JobRetryWait
	JobCompleted = apiv1.JobCompleted
	JobFailed    = apiv1.JobFailed
	JobCancelled = apiv1.JobCancelled
)

// Job is one encode of one input.
type Job struct {
	ID             uuid.UUID       `db:"id"`
	OrgID          uuid.UUID       `db:"org_id"`
	PoolID         string          `db:"pool_id"`
	Lane           string          `db:"lane"`
	Priority       int             `db:"priority"`
	Status         string          `db:"status"`
	InputAssetID   *uuid.UUID      `db:"input_asset_id"`
	InputURL       *string         `db:"input_url"`
	Captions       json.RawMessage `db:"captions"` // []apiv1.JobCaption
	WorkflowID     *uuid.UUID      `db:"workflow_id"`
	Spec           json.RawMessage `db:"spec"`
	IdempotencyKey *string         `db:"idempotency_key"`
	Attempts       int             `db:"attempts"`
	MaxAttempts    int             `db:"max_attempts"`
	LeaseExpiresAt *time.Time      `db:"lease_expires_at"`
	RunAfter       *time.Time      `db:"run_after"`
	WorkerID       *string         `db:"worker_id"`
	Progress       float32         `db:"progress"`
	Error          *string         `db:"error"`
	Outputs        json.RawMessage `db:"outputs"`
	Usage          json.RawMessage `db:"usage"`
	Metadata       json.RawMessage `db:"metadata"`
	CreatedAt      time.Time       `db:"created_at"`
	UpdatedAt      time.Time       `db:"updated_at"`
	StartedAt      *time.Time      `db:"started_at"`
	FinishedAt     *time.Time      `db:"finished_at"`
	// ParentID, Task and TaskData place a task of a split job
	// (docs/design/0028-chunked-encoding.md): Task is TaskJob for what a
	// customer submitted, and TaskData (a TaskData document) what a task
	// needs beyond its parent's columns.
	ParentID *uuid.UUID      `db:"parent_id"`
	Task     string          `db:"task"`
	TaskData json.RawMessage `db:"task_data"`
}

// Terminal reports whether the job has finished for good.
func (j Job) Terminal() bool { return apiv1.Terminal(j.Status) }

const jobColumns = `id, org_id, pool_id, lane, priority, status, input_asset_id, input_url, captions, workflow_id,
	spec, idempotency_key, attempts, max_attempts, lease_expires_at, run_after, worker_id, progress,
	error, outputs, usage, metadata, created_at, updated_at, started_at, finished_at, parent_id, task, task_data`

// NewJob is a validated submission. Exactly one of InputAssetID/InputURL and
// one of WorkflowID/Spec is set.
type NewJob struct {
	OrgID        uuid.UUID
	PoolID       string
	Lane         string
	Priority     int
	MaxAttempts  int
	InputAssetID *uuid.UUID
	InputURL     *string
	// Captions are the job's caption files, checked (a JSON array of
	// apiv1.JobCaption); nil is none.
	Captions       json.RawMessage
	WorkflowID     *uuid.UUID
	Spec           json.RawMessage
	Metadata       json.RawMessage
	IdempotencyKey *string
	RequestHash    []byte
	// Claim, when set, is a claim waiting for this submission's job
	// (dispatcher's Coordinator.Reserve): the statement that inserts the
	// job makes it running under that claim, as the claim's own statement
	// would, when the claim may take it. The long way ignores it.
	Claim *JobClaim
}

// JobClaim is a waiting claim a submission's job may be inserted claimed
// by: its worker, its claim token's hash, when it claims and until when
// its lease runs. The job is claimed only if its pool is not paused and
// the worker (as the statement finds it) is not drained, evicted or
// registered in another pool, the conditions claimJobsSQL checks;
// otherwise it is inserted queued, as without a claim.
type JobClaim struct {
	Worker     Worker
	TokenHash  []byte
	Now        time.Time
	LeaseUntil time.Time
}

// claimArgs are c's statement parameters, all NULL when c is nil: worker
// id, claim token hash, now, lease deadline, node, capabilities, and the
// job.started event's id.
func (c *JobClaim) claimArgs() (worker *string, hash []byte, now, lease *time.Time, node *string, caps json.RawMessage, eventID *string) {
	if c == nil {
		return nil, nil, nil, nil, nil, nil, nil
	}
	caps = c.Worker.Capabilities
	if caps == nil {
		caps = json.RawMessage(`{}`)
	}
	ev := newID().String()
	return &c.Worker.ID, c.TokenHash, &c.Now, &c.LeaseUntil, &c.Worker.Node, caps, &ev
}

// CreateJob commits a job and its job.queued event in one transaction. With
// an idempotency key already used by the organization it returns the
// existing job and created=false, or a conflict when the request differs.
// References (pool, asset, workflow) outside the organization are reported
// as field errors, exactly as if they did not exist.
func (s *Store) CreateJob(ctx context.Context, nj NewJob) (job Job, created bool, err error) {
	if nj.Captions == nil {
		nj.Captions = json.RawMessage(`[]`)
	}
	if nj.InputAssetID == nil && nj.WorkflowID == nil {
		// The common submission (a URL input, a built-in or inline spec)
		// commits in one statement; anything it cannot settle (no such
		// pool, an idempotency key already used) goes the long way below,
		// which tells the two apart.
		worker, hash, now, lease, node, caps, started := nj.Claim.claimArgs()
		rows, _ := s.pool.Query(ctx, createJobSQL, newID(), nj.OrgID, nj.PoolID, nj.Lane, nj.Priority, nj.MaxAttempts,
			nj.InputURL, nj.Spec, nj.Metadata, nj.IdempotencyKey, nj.RequestHash, newID().String(), nj.Captions,
			worker, hash, now, lease, node, caps, started)
		j, err := pgx.CollectExactlyOneRow(rows, scanJob)
		if err == nil {
			return j, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Job{}, false, fmt.Errorf("create job: %w", mapErr(err, "job"))
		}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if nj.IdempotencyKey != nil {
			existing, found, err := jobByIdempotencyKey(ctx, tx, nj.OrgID, *nj.IdempotencyKey, nj.RequestHash)
			if err != nil || found {
				job = existing
				return err
			}
		}
		if err := checkJobRefs(ctx, tx, &nj); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO jobs (id, org_id, pool_id, lane, priority, max_attempts, input_asset_id, input_url,
				workflow_id, spec, metadata, idempotency_key, request_hash, captions)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING `+jobColumns,
			newID(), nj.OrgID, nj.PoolID, nj.Lane, nj.Priority, nj.MaxAttempts, nj.InputAssetID, nj.InputURL,
			nj.WorkflowID, nj.Spec, nj.Metadata, nj.IdempotencyKey, nj.RequestHash, nj.Captions)
		j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if errors.Is(err, pgx.ErrNoRows) && nj.IdempotencyKey != nil {
			// A concurrent request with the same key won the insert.
			existing, _, err := jobByIdempotencyKey(ctx, tx, nj.OrgID, *nj.IdempotencyKey, nj.RequestHash)
			job = existing
			return err
		}
		if err != nil {
			return mapErr(err, "job")
		}
		job, created = j, true
		return insertJobEvent(ctx, tx, j, "job.queued", map[string]any{"pool_id": j.PoolID, "lane": j.Lane})
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("create job: %w", err)
	}
	return job, created, nil
}

// createJobSQL inserts a job whose input is a URL and whose spec is given,
// with its job.queued event and webhook deliveries, in one statement. The
// pool must be visible to the organization (its row is locked against
// deletion as checkJobRefs does); no row comes back when it is not, or when
// the idempotency key was already used. With a claim ($14 on, NewJob.Claim)
// the job is inserted running under it when submittedClaimSQL allows, with
// the worker's registration and the job.started event after job.queued,
// as claimJobSQL would make them.
//
// $1 id, $2 org, $3 pool, $4 lane, $5 priority, $6 max attempts, $7 input
// URL, $8 spec, $9 metadata, $10 idempotency key, $11 request hash, $12
// event id, $13 captions; the claim's (all NULL without one): $14 worker
// id, $15 claim token hash, $16 now, $17 lease deadline, $18 node, $19
// capabilities, $20 job.started event id.
var createJobSQL = `
	WITH p AS (
			SELECT id, status FROM worker_pools WHERE id = $3 AND (org_id = $2 OR org_id IS NULL) FOR SHARE),
		c AS (
			SELECT ` + submittedClaimSQL("$14::text", "p", "(SELECT w.pool_id, w.status FROM workers w WHERE w.id = $14)") + ` AS claimed FROM p),
		j AS (
			INSERT INTO jobs (id, org_id, pool_id, lane, priority, max_attempts, input_url, spec, metadata,
				idempotency_key, request_hash, captions, status, attempts, worker_id, claim_token_hash, lease_expires_at, started_at)
			SELECT $1::uuid, $2::uuid, p.id, $4::text, $5::int, $6::int, $7::text, $8::jsonb, $9::jsonb, $10::text, $11::bytea, $13::jsonb,
				` + submittedStatusSQL("c.claimed", "$14::text", "$15::bytea", "$17::timestamptz", "$16::timestamptz") + `
			FROM p, c
			ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING ` + jobColumns + `),
		` + submittedEffectsCTEs("$18::text", "$19::jsonb", "$16::timestamptz", "$12::text", "$20::text") + `
	SELECT ` + jobColumns + ` FROM j`

// submittedClaimSQL is whether a submission's job is inserted claimed: a
// claim's worker was given (worker, an SQL expression, not NULL), the
// job's pool (the CTE pool, with its status) is not paused, and the
// worker's row as the statement finds it (prev, a query of its pool_id
// and status) is not drained, evicted or of another pool.
func submittedClaimSQL(worker, pool, prev string) string {
	return worker + ` IS NOT NULL AND ` + pool + `.status <> 'paused' AND NOT EXISTS (SELECT 1 FROM ` + prev + ` cw
		WHERE cw.pool_id <> ` + pool + `.id OR cw.status IN ('draining', 'evicted'))`
}

// submittedEffectsCTEs are what the submission statements write beside
// the jobs they insert (the CTE j): for each job inserted claimed, its
// worker's registration (node, capabilities and the claim's time at, SQL
// expressions over j), as the claim statements register it; for each job,
// job.queued (event id queuedID) and, when inserted claimed, job.started
// (startedID) after it, with their webhook deliveries.
func submittedEffectsCTEs(node, caps, at, queuedID, startedID string) string {
	return `wk AS (
			INSERT INTO workers (id, pool_id, lane, node, capabilities, registered_at, last_heartbeat_at, current_job_id)
			SELECT j.worker_id, j.pool_id, j.lane, ` + node + `, ` + caps + `, ` + at + `, ` + at + `, j.id
			FROM j WHERE j.status = 'running'
			ORDER BY j.worker_id
			` + workerClaimUpsertSQL + `),
		evs AS (
			SELECT j.id AS job_id, j.org_id, 'job.queued' AS type, jsonb_build_object('pool_id', j.pool_id, 'lane', j.lane) AS data,
				` + queuedID + ` AS event_id, 1 AS seq FROM j
			UNION ALL
			SELECT j.id, j.org_id, 'job.started', jsonb_build_object('worker_id', j.worker_id, 'attempt', j.attempts), ` + startedID + `, 2
			FROM j WHERE j.status = 'running'),
		` + jobEventsCTEs("evs", "j")
}

// submittedStatusSQL is the claim columns of an inserted job (status,
// attempts, worker_id, claim_token_hash, lease_expires_at, started_at):
// running under the claim's worker, token hash and lease from now when
// claimed (an SQL boolean), else queued as a submission's default.
func submittedStatusSQL(claimed, worker, hash, lease, now string) string {
	return `CASE WHEN ` + claimed + ` THEN 'running' ELSE 'queued' END, CASE WHEN ` + claimed + ` THEN 1 ELSE 0 END,
				CASE WHEN ` + claimed + ` THEN ` + worker + ` END, CASE WHEN ` + claimed + ` THEN ` + hash + ` END,
				CASE WHEN ` + claimed + ` THEN ` + lease + ` END, CASE WHEN ` + claimed + ` THEN ` + now + ` END`
}

func jobByIdempotencyKey(ctx context.Context, tx pgx.Tx, orgID uuid.UUID, key string, hash []byte) (Job, bool, error) {
	var stored []byte
	rows, _ := tx.Query(ctx, `SELECT `+jobColumns+`, request_hash FROM jobs WHERE org_id = $1 AND idempotency_key = $2`, orgID, key)
	var j Job
	found := false
	for rows.Next() {
		found = true
		if err := rows.Scan(jobScanTargets(&j, nil, &stored)...); err != nil {
			rows.Close()
			return Job{}, false, mapErr(err, "job")
		}
	}
	if err := rows.Err(); err != nil {
		return Job{}, false, mapErr(err, "job")
	}
	if found && !bytes.Equal(stored, hash) {
		return Job{}, false, conflict("Idempotency-Key %q was already used with a different request", key)
	}
	return j, found, nil
}

// jobScanTargets are lead, then j's fields in jobColumns' order, then
// extra, in one slice (a batch scans all its rows through one). The
// JSON columns are scanned as bytes (*[]byte): into a json.RawMessage
// pgx would run json.Unmarshal, which checks every byte of what Postgres
// has already checked (5 % of the coordinator's CPU on the claim and
// completion path).
func jobScanTargets(j *Job, lead []any, extra ...any) []any {
	t := make([]any, 0, len(lead)+jobFields+len(extra))
	t = append(t, lead...)
	t = append(t, &j.ID, &j.OrgID, &j.PoolID, &j.Lane, &j.Priority, &j.Status, &j.InputAssetID,
		&j.InputURL, (*[]byte)(&j.Captions), &j.WorkflowID, (*[]byte)(&j.Spec), &j.IdempotencyKey, &j.Attempts, &j.MaxAttempts,
		&j.LeaseExpiresAt, &j.RunAfter, &j.WorkerID, &j.Progress, &j.Error, (*[]byte)(&j.Outputs), (*[]byte)(&j.Usage),
		(*[]byte)(&j.Metadata), &j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt, &j.ParentID, &j.Task, (*[]byte)(&j.TaskData))
	return append(t, extra...)
}

// jobFields is how many columns jobColumns names.
var jobFields = strings.Count(jobColumns, ",") + 1

// scanJob reads a row of jobColumns by position (jobScanTargets), for
// the hot path: pgx.RowToStructByName matches the columns to the fields
// by name on every row, a tenth of a submission's allocations.
func scanJob(row pgx.CollectableRow) (Job, error) {
	var j Job
	err := row.Scan(jobScanTargets(&j, nil)...)
	return j, err
}

// checkJobRefs verifies that the pool, asset and workflow a submission names
// are visible to its organization, locking the pool row against deletion,
// and copies the workflow's spec into the job.
func checkJobRefs(ctx context.Context, tx pgx.Tx, nj *NewJob) error {
	var errs validation.Errors
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM worker_pools WHERE id = $1 AND (org_id = $2 OR org_id IS NULL) FOR SHARE`, nj.PoolID, nj.OrgID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		errs.Add("pool", "no pool %q in this organization", nj.PoolID)
	} else if err != nil {
		return mapErr(err, "pool")
	}
	if nj.InputAssetID != nil {
		var upload *string
		err := tx.QueryRow(ctx, `SELECT upload_status FROM assets WHERE id = $1 AND org_id = $2`, *nj.InputAssetID, nj.OrgID).Scan(&upload)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			errs.Add("input.asset_id", "no asset %s in this organization", *nj.InputAssetID)
		case err != nil:
			return mapErr(err, "asset")
		case upload != nil && *upload != UploadUploaded:
			errs.Add("input.asset_id", "asset %s has no content: its multipart upload is %s (complete it first)", *nj.InputAssetID, *upload)
		}
	}
	if nj.WorkflowID != nil {
		err := tx.QueryRow(ctx, `SELECT spec FROM workflows WHERE id = $1 AND org_id = $2`, *nj.WorkflowID, nj.OrgID).Scan(&nj.Spec)
		if errors.Is(err, pgx.ErrNoRows) {
			errs.Add("workflow_id", "no workflow %s in this organization", *nj.WorkflowID)
		} else if err != nil {
			return mapErr(err, "workflow")
		}
	}
	return errs.Err()
}

// insertJobEvent records a job event and, in the same statement, one
// webhook delivery per enabled webhook of the organization subscribed to its
// type (a transactional outbox: the event and its deliveries commit or roll
// back with the change they describe). The delivery carries the job as it
// stands after the statements before this one in the transaction. A task
// of a split job has events but no deliveries: webhooks are about jobs.
func insertJobEvent(ctx context.Context, tx execer, j Job, typ string, data map[string]any) error {
	_, err := tx.Exec(ctx, `
		WITH e AS (
			INSERT INTO job_events (job_id, org_id, type, data) VALUES ($1, $2, $3, $4)
			RETURNING job_id, org_id, type, data, created_at)
		INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, event_type, payload)
		SELECT gen_random_uuid(), w.id, e.org_id, $5::text, e.type, jsonb_build_object(
			'id', $5::text, 'type', e.type, 'org_id', e.org_id, 'job_id', e.job_id, 'pool_id', j.pool_id,
			'data', e.data, 'at', e.created_at, 'job', `+webhookJobSnapshot+`)
		FROM e JOIN jobs j ON j.id = e.job_id AND j.parent_id IS NULL
		JOIN webhooks w ON w.org_id = e.org_id AND w.enabled AND e.type = ANY (w.events)`,
		j.ID, j.OrgID, typ, data, newID().String())
	return mapErr(err, "job event")
}

// GetJob returns one of the organization's jobs. The tasks of a split job
// are not jobs of the API: they are shown through their parent.
func (s *Store) GetJob(ctx context.Context, orgID, id uuid.UUID) (Job, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND org_id = $2 AND parent_id IS NULL`, id, orgID)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	return j, mapErr(err, "job")
}

// JobFilter narrows a job listing; zero values match everything.
type JobFilter struct {
	Status        string
	PoolID        string
	Lane          string
	BatchID       *uuid.UUID
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

// ListJobs lists the organization's jobs newest first with keyset paging.
func (s *Store) ListJobs(ctx context.Context, orgID uuid.UUID, f JobFilter, page Page) ([]Job, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE org_id = $1 AND parent_id IS NULL
		  AND ($2 = '' OR status = $2)
		  AND ($3 = '' OR pool_id = $3)
		  AND ($4::timestamptz IS NULL OR created_at >= $4)
		  AND ($5::timestamptz IS NULL OR created_at < $5)
		  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
		  AND ($9 = '' OR lane = $9)
		  AND ($10::uuid IS NULL OR batch_id = $10)
		ORDER BY created_at DESC, id DESC LIMIT $8`,
		orgID, f.Status, f.PoolID, f.CreatedAfter, f.CreatedBefore, after, afterID, page.limit(), f.Lane, f.BatchID)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	return js, mapErr(err, "jobs")
}

// CancelJob cancels a job that has not finished, and every unfinished task
// of it when it was split. A running job's (or task's) worker learns it at
// its next heartbeat and stops FFmpeg.
func (s *Store) CancelJob(ctx context.Context, orgID, id uuid.UUID) (Job, error) {
	var out Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND org_id = $2 AND parent_id IS NULL FOR UPDATE`, id, orgID)
		j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "job")
		}
		if j.Terminal() {
			return conflict("job is already %s", j.Status)
		}
		rows, _ = tx.Query(ctx, `UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(),
			lease_expires_at = NULL, run_after = NULL WHERE id = $1 RETURNING `+jobColumns, id)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "job")
		}
		if err := insertUsage(ctx, tx, out, JobCancelled, Usage{}, *out.FinishedAt); err != nil {
			return err
		}
		if _, err := cancelTasks(ctx, tx, j.ID, "the job was cancelled", *out.FinishedAt); err != nil {
			return err
		}
		if err := clearWorker(ctx, tx, j); err != nil {
			return err
		}
		return insertJobEvent(ctx, tx, out, "job.cancelled", map[string]any{"previous_status": j.Status})
	})
	return out, err
}

// JobEvent is one entry of a job's history.
type JobEvent struct {
	ID        int64           `db:"id"`
	JobID     uuid.UUID       `db:"job_id"`
	Type      string          `db:"type"`
	Data      json.RawMessage `db:"data"`
	CreatedAt time.Time       `db:"created_at"`
}

// ListJobEvents returns a job's history, oldest first, after event id since.
// A split job's history includes its tasks' events, as the job's: a task's
// job.started is the job's task.started, its data naming the task (task,
// task_id and, for a chunk, its index as chunk).
func (s *Store) ListJobEvents(ctx context.Context, orgID, jobID uuid.UUID, since int64, limit int) ([]JobEvent, error) {
	if _, err := s.GetJob(ctx, orgID, jobID); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, `SELECT e.id, $1::uuid AS job_id,
			CASE WHEN j.parent_id IS NULL THEN e.type ELSE 'task.' || split_part(e.type, '.', 2) END AS type,
			CASE WHEN j.parent_id IS NULL THEN e.data ELSE e.data || jsonb_strip_nulls(jsonb_build_object(
				'task', j.task, 'task_id', j.id, 'chunk', j.task_data -> 'chunk' -> 'index')) END AS data,
			e.created_at
		FROM job_events e JOIN jobs j ON j.id = e.job_id
		WHERE e.job_id = ANY (ARRAY(SELECT $1::uuid UNION ALL SELECT id FROM jobs WHERE parent_id = $1))
			AND e.org_id = $2 AND e.id > $3 ORDER BY e.id LIMIT $4`, jobID, orgID, since, Page{Limit: limit}.limit())
	es, err := pgx.CollectRows(rows, pgx.RowToStructByName[JobEvent])
	return es, mapErr(err, "job events")
}

// CreateResult is one submission's answer in CreateJobs.
type CreateResult struct {
	Job     Job
	Created bool
	Err     error
	// LongWay: the statement could not settle this submission (an asset or
	// workflow input, a pool the organization cannot use, an idempotency
	// key already used or named twice in the batch); CreateJob answers it.
	LongWay bool
}

// CreateJobs commits, with one statement, every submission of njs that
// CreateJob would commit in one statement (a URL input and a given spec,
// an existing pool, an unused idempotency key): their results are created
// jobs with their job.queued events. The others come back LongWay, for the
// caller to give to CreateJob, each on its own (they are rare, and each is
// a transaction of several round trips). A batch of one (every submission
// under light load) is CreateJob's own answer, by its single-row statement.
//
// The error returned is one the statement cannot have been committed with
// (Postgres refused it, or it was never sent): the caller may try each
// submission alone. An error after that point (the connection lost while
// the rows were read) leaves the outcome unknown, so it is each
// submission's own error, never a reason to make them again.
func (s *Store) CreateJobs(ctx context.Context, njs []NewJob) ([]CreateResult, error) {
	out := make([]CreateResult, len(njs))
	if len(njs) == 1 {
		out[0].Job, out[0].Created, out[0].Err = s.CreateJob(ctx, njs[0])
		return out, nil
	}
	var (
		ords                      []int32
		ids, orgs                 uuidArray
		pools, lanes, evIDs       []string
		priorities, attempts      []int32
		urls, keys                []*string
		specs, metadata, captions []json.RawMessage
		hashes                    [][]byte
		seenKey                   = make(map[string]bool)
		// The claims' columns (NULL for a submission without one).
		workers, nodes, startedIDs []*string
		tokenHashes                [][]byte
		nows, leases               []*time.Time
		caps                       []json.RawMessage
	)
	for i, nj := range njs {
		out[i].LongWay = true
		if nj.InputAssetID != nil || nj.WorkflowID != nil {
			continue
		}
		if nj.IdempotencyKey != nil {
			k := nj.OrgID.String() + "\x00" + *nj.IdempotencyKey
			if seenKey[k] {
				continue // the long way tells a repeat from a conflict
			}
			seenKey[k] = true
		}
		if nj.Captions == nil {
			nj.Captions = json.RawMessage(`[]`)
		}
		ords, ids, orgs = append(ords, int32(i)), append(ids, newID()), append(orgs, nj.OrgID)
		pools, lanes, evIDs = append(pools, nj.PoolID), append(lanes, nj.Lane), append(evIDs, newID().String())
		priorities, attempts = append(priorities, int32(nj.Priority)), append(attempts, int32(nj.MaxAttempts))
		urls, keys = append(urls, nj.InputURL), append(keys, nj.IdempotencyKey)
		specs, metadata, captions = append(specs, nj.Spec), append(metadata, nj.Metadata), append(captions, nj.Captions)
		hashes = append(hashes, nj.RequestHash)
		worker, hash, now, lease, node, cap, started := nj.Claim.claimArgs()
		workers, tokenHashes, nows, leases = append(workers, worker), append(tokenHashes, hash), append(nows, now), append(leases, lease)
		nodes, caps, startedIDs = append(nodes, node), append(caps, cap), append(startedIDs, started)
	}
	if len(ords) == 0 {
		return out, nil
	}
	read := 0
	var (
		ord int32
		j   Job
	)
	err := s.pipe.scanEach(ctx, createJobsSQL, []any{ords, ids, orgs, pools, lanes, priorities, attempts, urls, specs, metadata,
		keys, hashes, evIDs, captions, workers, tokenHashes, nows, leases, nodes, caps, startedIDs}, jobScanTargets(&j, []any{&ord}), func() {
		out[ord] = CreateResult{Job: j, Created: true}
		read++
		j = Job{}
	})
	if err == nil {
		return out, nil
	}
	// Refused by Postgres, the statement rolled back, whatever rows were
	// read; not sent at all, nothing was read. (A row that would not scan
	// is neither: the statement may have committed.)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || (read == 0 && pgconn.SafeToRetry(err)) {
		return nil, fmt.Errorf("create jobs: %w", mapErr(err, "job"))
	}
	// Perhaps committed: no submission of the statement is made again.
	for _, ord := range ords {
		if !out[ord].Created {
			out[ord] = CreateResult{Err: fmt.Errorf("create job: the outcome is unknown (%w); submit again with an Idempotency-Key to be sure of one job", err)}
		}
	}
	return out, nil
}

// createJobsSQL is createJobSQL for several submissions at once (group
// commit, docs/design/0019-control-plane-round-trips.md): each input row's
// job is inserted, with its job.queued event and webhook deliveries, only
// if its pool is visible to its organization (the pool rows locked against
// deletion) and its idempotency key is unused; a row that is not comes back
// missing and goes the long way. A row with a claim is inserted running
// under it when submittedClaimSQL allows, with its worker's registration
// and job.started event, as createJobSQL does. The rows inserted come back
// tagged with their input's ordinal. A batch names each organization's
// idempotency key at most once (CreateJobs sends repeats the long way) and
// each claim's worker at most once (the API's batches keep them apart), and
// inserts in key order and registers workers in id order, so two batches
// sharing keys wait on each other, not deadlock, and neither deadlocks
// with a claim or completion batch (which lock workers in id order too).
//
// $1 ordinals, $2 ids, $3 orgs, $4 pools, $5 lanes, $6 priorities, $7 max
// attempts, $8 input URLs, $9 specs, $10 metadata, $11 idempotency keys,
// $12 request hashes, $13 event ids, $14 captions; the claims' (NULL
// elements for rows without one): $15 worker ids, $16 claim token hashes,
// $17 nows, $18 lease deadlines, $19 nodes, $20 capabilities, $21
// job.started event ids.
var createJobsSQL = `
	WITH input AS (
			SELECT * FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[],
				$9::jsonb[], $10::jsonb[], $11::text[], $12::bytea[], $13::text[], $14::jsonb[],
				$15::text[], $16::bytea[], $17::timestamptz[], $18::timestamptz[], $19::text[], $20::jsonb[], $21::text[])
				AS i (ord, id, org_id, pool_id, lane, priority, max_attempts, input_url, spec, metadata,
					idempotency_key, request_hash, event_id, captions,
					worker_id, token_hash, now, lease_until, node, capabilities, started_event_id)),
		p AS (
			SELECT id, org_id, status FROM worker_pools WHERE id = ANY ($4::text[]) ORDER BY id FOR SHARE),
		prev AS (
			SELECT w.id, w.pool_id, w.status FROM workers w WHERE w.id = ANY ($15::text[])),
		ins AS (
			INSERT INTO jobs (id, org_id, pool_id, lane, priority, max_attempts, input_url, spec, metadata,
				idempotency_key, request_hash, captions, status, attempts, worker_id, claim_token_hash, lease_expires_at, started_at)
			SELECT i.id, i.org_id, i.pool_id, i.lane, i.priority, i.max_attempts, i.input_url, i.spec, i.metadata,
				i.idempotency_key, i.request_hash, i.captions,
				` + submittedStatusSQL("c.claimed", "i.worker_id", "i.token_hash", "i.lease_until", "i.now") + `
			FROM input i JOIN p ON p.id = i.pool_id AND (p.org_id = i.org_id OR p.org_id IS NULL)
			CROSS JOIN LATERAL (SELECT ` + submittedClaimSQL("i.worker_id", "p", "(SELECT pool_id, status FROM prev WHERE prev.id = i.worker_id)") + ` AS claimed) c
			ORDER BY i.org_id, i.idempotency_key, i.ord
			ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING ` + jobColumns + `),
		j AS (
			SELECT ins.*, i.ord, i.event_id, i.started_event_id, i.node, i.capabilities, i.now AS claimed_at
			FROM ins JOIN input i ON i.id = ins.id),
		` + submittedEffectsCTEs("j.node", "j.capabilities", "j.claimed_at", "j.event_id", "j.started_event_id") + `
	SELECT j.ord, ` + prefixed("j.", jobColumns) + ` FROM j`
