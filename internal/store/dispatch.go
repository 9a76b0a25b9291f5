package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// ErrClaimToken and the other errors of the worker-facing protocol: the
// coordinator maps them to gRPC codes: ErrNotFound → NotFound,
// ErrClaimToken → PermissionDenied, *NotRunningError → FailedPrecondition.
var ErrClaimToken = errors.New("claim token does not match the job's current claim")

// NotRunningError says a worker called about a job that is no longer (or not
// yet) running: it finished, was cancelled, or was requeued.
type NotRunningError struct{ Status string }

func (e *NotRunningError) Error() string { return "job is " + e.Status + ", not running" }

// ClaimedJob is what a worker needs to run a claimed job.
type ClaimedJob struct {
	Job
	// InputObjectKey is the storage key of the input asset ("" for URL inputs).
	InputObjectKey string
	// QueuedAt is when the job last became claimable, as the claim found
	// it: its updated_at (set by the submission, a requeue, a retry coming
	// due or a release from hold) or its pool's last resume, whichever is
	// later (queuedAtSQL). The coordinator's dispatch-latency metric
	// measures from it. ClaimJob leaves it zero.
	QueuedAt time.Time
}

// ClaimJob turns a popped id into a running job held by workerID, in one
// transaction with the job.started event and the worker's current job. A
// stale or duplicate id (the job is not queued in this pool and lane) gives
// ErrNotFound: the caller drops it and pops the next.
func (s *Store) ClaimJob(ctx context.Context, id uuid.UUID, pool, lane, workerID string, tokenHash []byte, now, leaseUntil time.Time) (ClaimedJob, error) {
	var out ClaimedJob
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			UPDATE jobs SET status = 'running', attempts = attempts + 1, worker_id = $4,
				claim_token_hash = $5, lease_expires_at = $7, started_at = COALESCE(started_at, $6),
				run_after = NULL, progress = 0, error = NULL, updated_at = $6
			WHERE id = $1 AND pool_id = $2 AND lane = $3 AND status = 'queued' AND NOT held
			RETURNING `+jobColumns, id, pool, lane, workerID, tokenHash, now, leaseUntil)
		j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "claim job")
		}
		out.Job = j
		if j.InputAssetID != nil {
			if err := tx.QueryRow(ctx, `SELECT object_key FROM assets WHERE id = $1`, *j.InputAssetID).Scan(&out.InputObjectKey); err != nil {
				return mapErr(err, "input asset")
			}
		}
		var b batch // one round trip for the writes whose results we do not read
		_, _ = b.Exec(ctx, `UPDATE workers SET current_job_id = $2, last_heartbeat_at = $3 WHERE id = $1`, workerID, id, now)
		_ = insertJobEvent(ctx, &b, j, "job.started", map[string]any{"worker_id": workerID, "attempt": j.Attempts})
		return b.send(ctx, tx, "claim job")
	})
	return out, err
}

// heldJob locks a job of pool and checks the caller's claim token. A job of
// another pool does not exist for the caller.
func heldJob(ctx context.Context, tx pgx.Tx, id uuid.UUID, pool string, tokenHash []byte) (Job, []byte, error) {
	var stored []byte
	rows, _ := tx.Query(ctx, `SELECT `+jobColumns+`, claim_token_hash FROM jobs WHERE id = $1 AND pool_id = $2 FOR UPDATE`, id, pool)
	var j Job
	found := false
	for rows.Next() {
		found = true
		if err := rows.Scan(jobScanTargets(&j, nil, &stored)...); err != nil {
			rows.Close()
			return Job{}, nil, mapErr(err, "job")
		}
	}
	if err := rows.Err(); err != nil {
		return Job{}, nil, mapErr(err, "job")
	}
	if !found {
		return Job{}, nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if len(stored) == 0 || subtle.ConstantTimeCompare(stored, tokenHash) != 1 {
		return Job{}, nil, fmt.Errorf("job %s: %w", id, ErrClaimToken)
	}
	return j, stored, nil
}

// heldCheck classifies a job row read (and locked) by the statement that
// meant to change it, when the change did not apply: the caller does not
// hold the job, or it is no longer running.
func heldCheck(id uuid.UUID, status string, tokenOK bool) error {
	if !tokenOK {
		return fmt.Errorf("job %s: %w", id, ErrClaimToken)
	}
	if status != JobRunning {
		return &NotRunningError{Status: status}
	}
	return nil
}

// heartbeatJobsSQL is heartbeatSQL for many jobs: the requests as arrays
// (ordinal, job id, pool, token hash, lease deadline, progress, now), the
// jobs locked in id order and then their holders' workers in id order, as
// claimJobsSQL and completeJobsSQL lock them (two batches never wait on
// each other in a cycle), each extended only if its caller holds it
// running, each holder's worker refreshed. It returns each found job as
// locked with its ordinal and whether the token matched. cur carries each
// request's figures so that the UPDATE reads cur alone (two CTEs joined
// make a nested loop over every pair of a batch's rows: completeJobsSQL).
var heartbeatJobsSQL = `
	WITH req AS (
			SELECT * FROM unnest($1::int4[], $2::uuid[], $3::text[], $4::bytea[], $5::timestamptz[], $6::float8[], $7::timestamptz[])
				AS r(ord, id, pool, hash, lease, progress, now)),
		cur AS (
			SELECT req.ord, ` + prefixed("jobs.", jobColumns) + `, ` + tokenMatches("jobs", "req.hash") + ` AS token_ok,
				req.lease AS new_lease, req.progress AS new_progress, req.now AS at
			FROM req JOIN jobs ON jobs.id = req.id AND jobs.pool_id = req.pool
			ORDER BY jobs.id FOR UPDATE OF jobs),
		u AS (
			UPDATE jobs SET lease_expires_at = cur.new_lease, progress = GREATEST(jobs.progress, cur.new_progress), updated_at = cur.at
			FROM cur
			WHERE jobs.id = cur.id AND cur.status = 'running' AND cur.token_ok
			RETURNING jobs.worker_id, cur.at AS now),
		wk AS (
			UPDATE workers SET last_heartbeat_at = l.now
			FROM (SELECT w.id, u.now FROM workers w JOIN u ON w.id = u.worker_id
				ORDER BY w.id FOR NO KEY UPDATE OF w) l
			WHERE workers.id = l.id)
	SELECT cur.ord, ` + prefixed("cur.", jobColumns) + `, cur.token_ok FROM cur`

// tokenMatches is the claim-token check in SQL, over the row named alias
// and the parameter holding the caller's token hash: an empty stored hash
// never matches. The hashes are SHA-256 of random tokens, so comparing
// them in Postgres (not in constant time) leaks nothing usable.
func tokenMatches(alias, param string) string {
	return `COALESCE(length(` + alias + `.claim_token_hash) > 0 AND ` + alias + `.claim_token_hash = ` + param + `, false)`
}

// heartbeatSQL is Heartbeat in one statement: lock the job, and only if
// the caller holds it running, extend the lease, raise the progress and
// refresh the worker's heartbeat. It returns the job as locked (before the
// change) and whether the token matched, so the caller tells a cancelled
// job (cancel=true) from a stolen token from a finished job.
//
// $1 job id, $2 pool, $3 token hash, $4 lease deadline, $5 progress, $6 now.
var heartbeatSQL = `
	WITH cur AS (
			SELECT ` + jobColumns + `, ` + tokenMatches("jobs", "$3") + ` AS token_ok
			FROM jobs WHERE id = $1 AND pool_id = $2 FOR UPDATE),
		u AS (
			UPDATE jobs SET lease_expires_at = $4, progress = GREATEST(jobs.progress, $5), updated_at = $6
			FROM cur WHERE jobs.id = cur.id AND cur.status = 'running' AND cur.token_ok
			RETURNING jobs.worker_id),
		wk AS (
			UPDATE workers SET last_heartbeat_at = $6 WHERE id = (SELECT worker_id FROM u))
	SELECT ` + prefixed("cur.", jobColumns) + `, cur.token_ok FROM cur`

// Heartbeat extends a running job's lease and records progress, in one
// statement. For a job cancelled while running it reports cancelled=true
// so the worker stops.
func (s *Store) Heartbeat(ctx context.Context, id uuid.UUID, pool string, tokenHash []byte, progress float64, now, leaseUntil time.Time) (job Job, cancelled bool, err error) {
	var tokenOK bool
	err = s.pipe.queryRow(ctx, heartbeatSQL, []any{id, pool, tokenHash, leaseUntil, min(max(progress, 0), 1), now},
		jobScanTargets(&job, nil, &tokenOK)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, false, mapErr(err, "heartbeat")
	}
	r := heartbeatOutcome(id, job, tokenOK)
	return r.Job, r.Cancelled, r.Err
}

// heartbeatOutcome is a heartbeat's answer from the job as locked and
// whether the caller's token matched.
func heartbeatOutcome(id uuid.UUID, job Job, tokenOK bool) HeartbeatResult {
	if tokenOK && job.Status == JobCancelled {
		return HeartbeatResult{Job: job, Cancelled: true}
	}
	if err := heldCheck(id, job.Status, tokenOK); err != nil {
		return HeartbeatResult{Err: err}
	}
	return HeartbeatResult{Job: job}
}

// HeartbeatRequest is one heartbeat of a batch (see HeartbeatBatch).
type HeartbeatRequest struct {
	JobID      uuid.UUID
	PoolID     string
	TokenHash  []byte
	Progress   float64
	Now        time.Time
	LeaseUntil time.Time
}

// HeartbeatResult is one heartbeat's answer, in the order of the requests:
// the job as locked and whether it was cancelled, or the error Heartbeat
// gives for it alone.
type HeartbeatResult struct {
	Job       Job
	Cancelled bool
	Err       error
}

// HeartbeatBatch runs many heartbeats, of any jobs and pools, in one
// statement (heartbeatJobsSQL), each answered as Heartbeat answers it. The
// error is for the statement as a whole (nothing was applied) or for a
// batch naming a job twice, refused before anything runs.
func (s *Store) HeartbeatBatch(ctx context.Context, reqs []HeartbeatRequest) ([]HeartbeatResult, error) {
	if len(reqs) == 1 {
		r := reqs[0]
		job, cancelled, err := s.Heartbeat(ctx, r.JobID, r.PoolID, r.TokenHash, r.Progress, r.Now, r.LeaseUntil)
		return []HeartbeatResult{{Job: job, Cancelled: cancelled, Err: err}}, nil
	}
	n := len(reqs)
	var (
		ords        = make([]int32, n)
		ids         = make(uuidArray, n)
		pools       = make([]string, n)
		hashes      = make([][]byte, n)
		progress    = make([]float64, n)
		nows, lease = make([]time.Time, n), make([]time.Time, n)
		seen        = make(map[uuid.UUID]bool, n)
	)
	for i, r := range reqs {
		if seen[r.JobID] {
			return nil, fmt.Errorf("heartbeat batch: job %s named twice", r.JobID)
		}
		seen[r.JobID] = true
		ords[i], ids[i], pools[i], hashes[i] = int32(i), r.JobID, r.PoolID, r.TokenHash
		progress[i], nows[i], lease[i] = min(max(r.Progress, 0), 1), r.Now, r.LeaseUntil
	}
	out := make([]HeartbeatResult, n)
	found := make([]bool, n)
	var (
		ord     int32
		job     Job
		tokenOK bool
	)
	targets := jobScanTargets(&job, []any{&ord}, &tokenOK)
	err := s.pipe.scanEach(ctx, heartbeatJobsSQL, []any{ords, ids, pools, hashes, lease, progress, nows}, targets, func() {
		out[ord], found[ord] = heartbeatOutcome(reqs[ord].JobID, job, tokenOK), true
		job = Job{}
	})
	if err != nil {
		return nil, mapErr(err, "heartbeat")
	}
	for i, r := range reqs {
		if !found[i] {
			out[i].Err = fmt.Errorf("job %s: %w", r.JobID, ErrNotFound)
		}
	}
	return out, nil
}

// CheckHeld verifies that the caller holds a running job (before
// presigning, and before checking a completion's outputs). One read, no
// lock: the change that follows checks again in its own statement.
func (s *Store) CheckHeld(ctx context.Context, id uuid.UUID, pool string, tokenHash []byte) (Job, error) {
	var (
		j       Job
		tokenOK bool
	)
	err := s.pool.QueryRow(ctx, `SELECT `+jobColumns+`, `+tokenMatches("jobs", "$3")+` FROM jobs WHERE id = $1 AND pool_id = $2`,
		id, pool, tokenHash).Scan(jobScanTargets(&j, nil, &tokenOK)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, mapErr(err, "job")
	}
	if err := heldCheck(id, j.Status, tokenOK); err != nil {
		return Job{}, err
	}
	return j, nil
}

// Usage is what one finished attempt consumed.
type Usage struct {
	EncodeSeconds float64 `json:"encode_seconds"`
	OutputSeconds float64 `json:"output_seconds"`
	Accelerator   string  `json:"accelerator"`
	GPUSeconds    float64 `json:"gpu_seconds"`
}

// accelerator is the usage record's accelerator: the CPU unless given.
func (u Usage) accelerator() string {
	if u.Accelerator == "" {
		return apiv1.AcceleratorCPU
	}
	return u.Accelerator
}

func insertUsage(ctx context.Context, tx execer, j Job, status string, u Usage, now time.Time) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO usage_records (org_id, job_id, day, status, accelerator, encode_seconds, gpu_seconds, output_minutes, parent_job_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (job_id) DO NOTHING`,
		j.OrgID, j.ID, now.UTC().Truncate(24*time.Hour), status, u.accelerator(), u.EncodeSeconds, u.GPUSeconds, u.OutputSeconds/60, j.ParentID)
	return mapErr(err, "usage record")
}

func clearWorker(ctx context.Context, tx execer, j Job) error {
	if j.WorkerID == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE workers SET current_job_id = NULL WHERE id = $1 AND current_job_id = $2`, *j.WorkerID, j.ID)
	return mapErr(err, "worker")
}

// completeJobsSQL completes a batch of held jobs in one statement (group
// commit, docs/design/0019-control-plane-round-trips.md): lock the jobs
// (in id order); for each one the caller holds running, mark it completed
// with its outputs and usage, write the usage record, clear the worker's
// current job, and write job.completed with its webhook deliveries. Each
// row stands alone. The answer is, per input row (by its ordinal), the
// completed job (done=true) or the row as locked (done=false) to tell the
// caller why not; no row: no such job in the caller's pool.
//
// Jobs are looked up through the parameter array itself (id = ANY ($2)),
// as in claimJobsSQL, and locked in id order (the UPDATE then finds them
// by cur's ids alone, as claimJobsSQL's does); then the workers whose
// current job is among them, in id order, as claimJobsSQL locks them (a
// claim batch may name the same workers: TestClaimBatchesDoNotDeadlock).
// A batch names each job at most once (CompleteBatch checks). cur carries
// each row's input, so that no step joins two CTEs: the planner guesses
// one row for a CTE and joins two by a nested loop, a comparison for
// every pair of a batch's rows. The parameters are parallel arrays, one element per completion: $1 ordinal,
// $2 job id, $3 pool, $4 token hash, $5 outputs, $6 usage, $7 now, $8 day,
// $9 accelerator, $10 encode seconds, $11 GPU seconds, $12 output minutes,
// $13 event id.
var completeJobsSQL = `
	WITH input AS (
			SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::bytea[], $5::jsonb[], $6::jsonb[],
				$7::timestamptz[], $8::date[], $9::text[], $10::float8[], $11::float8[], $12::float8[], $13::text[])
				AS i (ord, job_id, pool_id, token_hash, outputs, usage, now, day, accelerator, encode_seconds, gpu_seconds, output_minutes, event_id)),
		cur AS (
			SELECT ` + prefixed("jobs.", jobColumns) + `, ` + tokenMatches("jobs", "i.token_hash") + ` AS token_ok, i.ord,
				i.outputs AS new_outputs, i.usage AS new_usage, i.now AS at, i.event_id, i.day, i.accelerator,
				i.encode_seconds, i.gpu_seconds, i.output_minutes
			FROM jobs JOIN input i ON jobs.id = i.job_id AND jobs.pool_id = i.pool_id
			WHERE jobs.id = ANY ($2::uuid[])
			ORDER BY jobs.id FOR UPDATE OF jobs),
		j AS (
			UPDATE jobs SET status = 'completed', outputs = cur.new_outputs, usage = cur.new_usage, progress = 1,
				lease_expires_at = NULL, finished_at = cur.at, updated_at = cur.at
			FROM cur
			WHERE jobs.id = cur.id AND ` + completableSQL + `
			RETURNING ` + prefixed("jobs.", jobColumns) + `, cur.ord, cur.event_id, cur.day, cur.accelerator, cur.encode_seconds, cur.gpu_seconds, cur.output_minutes),
		ur AS (
			INSERT INTO usage_records (org_id, job_id, day, status, accelerator, encode_seconds, gpu_seconds, output_minutes, parent_job_id)
			SELECT org_id, id, day, 'completed', accelerator, encode_seconds, gpu_seconds, output_minutes, parent_id FROM j
			ON CONFLICT (job_id) DO NOTHING),
		wk AS (
			UPDATE workers SET current_job_id = NULL
			FROM (SELECT w.id FROM workers w JOIN j ON w.id = j.worker_id AND w.current_job_id = j.id
				WHERE w.current_job_id = ANY ($2::uuid[])
				ORDER BY w.id FOR NO KEY UPDATE OF w) l
			WHERE workers.id = l.id),
		` + jobEventCTEs("j", "'job.completed'", "jsonb_build_object('usage', j.usage)", "j.event_id") + `
	SELECT ord, ` + jobColumns + `, true AS done, true AS token_ok FROM j
	UNION ALL
	SELECT ord, ` + jobColumns + `, false, token_ok FROM cur WHERE NOT (` + completableSQL + `)`

// completableSQL is, in completeJobsSQL, whether a locked row (cur) is
// completed: the UPDATE's own condition. A row cur locked is updated
// whenever it holds (no one else can change it meanwhile), so the rows
// not completed are those of cur where it does not (token_ok is never
// NULL), found without joining cur to the UPDATE's rows.
const completableSQL = `cur.status = 'running' AND cur.token_ok`

// completeJobSQL is completeJobsSQL for one completion, with scalar
// parameters (the statement a completion alone takes; its plan is the
// simpler and the cheaper to make): the completion in one statement: lock the job; only if
// the caller holds it running, mark it completed with its outputs and
// usage, write the usage record, clear the worker's current job, and write
// job.completed with its webhook deliveries. The answer is the completed
// job (done=true), or the row as locked (done=false) to tell the caller
// why not; no row: no such job in this pool.
//
// $1 job id, $2 pool, $3 token hash, $4 outputs, $5 usage, $6 now, $7 day,
// $8 accelerator, $9 encode seconds, $10 GPU seconds, $11 output minutes,
// $12 event id.
var completeJobSQL = `
	WITH cur AS (
			SELECT ` + jobColumns + `, ` + tokenMatches("jobs", "$3") + ` AS token_ok
			FROM jobs WHERE id = $1 AND pool_id = $2 FOR UPDATE),
		j AS (
			UPDATE jobs SET status = 'completed', outputs = $4, usage = $5, progress = 1,
				lease_expires_at = NULL, finished_at = $6, updated_at = $6
			FROM cur WHERE jobs.id = cur.id AND cur.status = 'running' AND cur.token_ok
			RETURNING ` + prefixed("jobs.", jobColumns) + `),
		ur AS (
			INSERT INTO usage_records (org_id, job_id, day, status, accelerator, encode_seconds, gpu_seconds, output_minutes, parent_job_id)
			SELECT org_id, id, $7::date, 'completed', $8::text, $9::float8, $10::float8, $11::float8, parent_id FROM j
			ON CONFLICT (job_id) DO NOTHING),
		wk AS (
			UPDATE workers SET current_job_id = NULL
			WHERE id = (SELECT worker_id FROM j) AND current_job_id = $1),
		` + jobEventCTEs("j", "'job.completed'", "jsonb_build_object('usage', $5::jsonb)", "$12") + `
	SELECT ` + jobColumns + `, true AS done, true AS token_ok FROM j
	UNION ALL
	SELECT ` + jobColumns + `, false, token_ok FROM cur WHERE NOT EXISTS (SELECT 1 FROM j)`

// CompleteRequest is one completion of a batch: the held job, its pool and
// claim token hash, its outputs document and usage.
type CompleteRequest struct {
	JobID     uuid.UUID
	PoolID    string
	TokenHash []byte
	Outputs   json.RawMessage
	Usage     Usage
	Now       time.Time
}

// CompleteResult is one completion's outcome, in the order of the
// requests: the completed job, or the error CompleteJob gives for it alone.
type CompleteResult struct {
	Job Job
	Err error
}

// CompleteJob records a held job's outputs document and usage and finishes
// it, in one statement (completeJobsSQL). The caller checks the outputs
// (every file in storage) before, outside any transaction; the statement
// checks again that the caller still holds the job running (same claim
// token), so a job requeued meanwhile is not completed by its former
// holder, and no network I/O ever waits on the row lock.
func (s *Store) CompleteJob(ctx context.Context, id uuid.UUID, pool string, tokenHash []byte, outputs json.RawMessage, u Usage, now time.Time) (Job, error) {
	res, err := s.CompleteBatch(ctx, []CompleteRequest{{JobID: id, PoolID: pool, TokenHash: tokenHash, Outputs: outputs, Usage: u, Now: now}})
	if err != nil {
		return Job{}, err
	}
	return res[0].Job, res[0].Err
}

// CompleteBatch makes every completion of reqs in one statement and returns
// one result per request, in order, each exactly what CompleteJob gives for
// that request alone. The error is for the statement as a whole (nothing
// of the batch was applied) or for a batch naming a job twice, refused
// before anything runs.
func (s *Store) CompleteBatch(ctx context.Context, reqs []CompleteRequest) ([]CompleteResult, error) {
	if len(reqs) == 1 {
		return s.completeOne(ctx, reqs[0])
	}
	n := len(reqs)
	var (
		ords                   = make([]int32, n)
		ids                    = make(uuidArray, n)
		pools, accs, evIDs     = make([]string, n), make([]string, n), make([]string, n)
		hashes                 = make([][]byte, n)
		outputs, usages        = make([]json.RawMessage, n), make([]json.RawMessage, n)
		nows, days             = make([]time.Time, n), make([]time.Time, n)
		encSecs, gpuSecs, mins = make([]float64, n), make([]float64, n), make([]float64, n)
		seen                   = make(map[uuid.UUID]bool, n)
	)
	for i, r := range reqs {
		if seen[r.JobID] {
			return nil, fmt.Errorf("complete batch: job %s named twice", r.JobID)
		}
		seen[r.JobID] = true
		u, err := json.Marshal(r.Usage)
		if err != nil {
			return nil, fmt.Errorf("complete job %s: usage: %w", r.JobID, err)
		}
		accs[i] = r.Usage.accelerator()
		ords[i], ids[i], pools[i], hashes[i], outputs[i], usages[i] = int32(i), r.JobID, r.PoolID, r.TokenHash, r.Outputs, u
		nows[i], days[i], evIDs[i] = r.Now, r.Now.UTC().Truncate(24*time.Hour), newID().String()
		encSecs[i], gpuSecs[i], mins[i] = r.Usage.EncodeSeconds, r.Usage.GPUSeconds, r.Usage.OutputSeconds/60
	}
	out := make([]CompleteResult, n)
	answered := make([]bool, n)
	var (
		ord           int32
		j             Job
		done, tokenOK bool
	)
	targets := jobScanTargets(&j, []any{&ord}, &done, &tokenOK)
	err := s.pipe.scanEach(ctx, completeJobsSQL, []any{ords, ids, pools, hashes, outputs, usages, nows, days, accs, encSecs, gpuSecs, mins, evIDs}, targets, func() {
		answered[ord] = true
		out[ord] = completeOutcome(reqs[ord].JobID, j, done, tokenOK)
		j = Job{}
	})
	if err != nil {
		return nil, mapErr(err, "complete jobs")
	}
	for i, r := range reqs {
		if !answered[i] {
			out[i].Err = fmt.Errorf("job %s: %w", r.JobID, ErrNotFound)
		}
	}
	return out, nil
}

// completeOne is CompleteBatch of one request, with completeJobSQL.
func (s *Store) completeOne(ctx context.Context, r CompleteRequest) ([]CompleteResult, error) {
	u := r.Usage
	var (
		j             Job
		done, tokenOK bool
	)
	err := s.pipe.queryRow(ctx, completeJobSQL, []any{r.JobID, r.PoolID, r.TokenHash, r.Outputs, u, r.Now, r.Now.UTC().Truncate(24 * time.Hour),
		u.accelerator(), u.EncodeSeconds, u.GPUSeconds, u.OutputSeconds / 60, newID().String()}, jobScanTargets(&j, nil, &done, &tokenOK)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return []CompleteResult{{Err: fmt.Errorf("job %s: %w", r.JobID, ErrNotFound)}}, nil
	case err != nil:
		return nil, mapErr(err, "complete job")
	}
	return []CompleteResult{completeOutcome(r.JobID, j, done, tokenOK)}, nil
}

// completeOutcome reads one row of a completion statement: the completed
// job (done), or why the row as locked was not completed.
func completeOutcome(id uuid.UUID, j Job, done, tokenOK bool) CompleteResult {
	if done {
		return CompleteResult{Job: j}
	}
	err := heldCheck(id, j.Status, tokenOK)
	if err == nil {
		err = fmt.Errorf("complete job %s: the row changed under its lock (report this)", id)
	}
	return CompleteResult{Err: err}
}

// Failure outcomes.
const (
	OutcomeRequeued       = "requeued"
	OutcomeRetryScheduled = "retry_scheduled"
	OutcomeFailed         = "failed"
)

// FailPolicy decides what a failed attempt becomes.
type FailPolicy struct {
	Now time.Time
	// Backoff is the wait before retry number attempt+1 (attempt ≥ 1).
	Backoff func(attempt int) time.Duration
}

// failTransition applies a failure to a locked running job: requeue at once
// (preempted: the attempt is given back), schedule a retry, or fail for good.
func failTransition(ctx context.Context, tx pgx.Tx, j Job, msg string, retryable, preempted bool, p FailPolicy) (Job, string, error) {
	var (
		rows    pgx.Rows
		outcome string
	)
	switch {
	case retryable && preempted:
		outcome = OutcomeRequeued
		rows, _ = tx.Query(ctx, `UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), worker_id = NULL,
				claim_token_hash = NULL, lease_expires_at = NULL, progress = 0, error = $2, updated_at = $3
			WHERE id = $1 RETURNING `+jobColumns, j.ID, msg, p.Now)
	case retryable && j.Attempts < j.MaxAttempts:
		outcome = OutcomeRetryScheduled
		rows, _ = tx.Query(ctx, `UPDATE jobs SET status = 'retry_wait', worker_id = NULL, claim_token_hash = NULL,
				lease_expires_at = NULL, run_after = $3, progress = 0, error = $2, updated_at = $4
			WHERE id = $1 RETURNING `+jobColumns, j.ID, msg, p.Now.Add(p.Backoff(j.Attempts)), p.Now)
	default:
		outcome = OutcomeFailed
		if retryable {
			msg = fmt.Sprintf("%s (gave up after %d of %d attempts)", msg, j.Attempts, j.MaxAttempts)
		}
		rows, _ = tx.Query(ctx, `UPDATE jobs SET status = 'failed', claim_token_hash = NULL, lease_expires_at = NULL,
				error = $2, finished_at = $3, updated_at = $3
			WHERE id = $1 RETURNING `+jobColumns, j.ID, msg, p.Now)
	}
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, "", mapErr(err, "fail job")
	}
	if outcome == OutcomeFailed {
		if err := insertUsage(ctx, tx, out, JobFailed, Usage{}, p.Now); err != nil {
			return Job{}, "", err
		}
	}
	if err := clearWorker(ctx, tx, j); err != nil {
		return Job{}, "", err
	}
	typ := map[string]string{OutcomeRequeued: "job.requeued", OutcomeRetryScheduled: "job.retry_scheduled", OutcomeFailed: "job.failed"}[outcome]
	data := map[string]any{"error": msg, "attempt": j.Attempts}
	if out.RunAfter != nil {
		data["retry_at"] = out.RunAfter
	}
	return out, outcome, insertJobEvent(ctx, tx, out, typ, data)
}

// FailJob ends a held job's attempt.
func (s *Store) FailJob(ctx context.Context, id uuid.UUID, pool string, tokenHash []byte, msg string, retryable, preempted bool, p FailPolicy) (Job, string, error) {
	var (
		out     Job
		outcome string
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		j, _, err := heldJob(ctx, tx, id, pool, tokenHash)
		if err != nil {
			return err
		}
		if j.Status != JobRunning {
			return &NotRunningError{Status: j.Status}
		}
		out, outcome, err = failTransition(ctx, tx, j, msg, retryable, preempted, p)
		return err
	})
	return out, outcome, err
}

// Transition is one job moved by a background service.
type Transition struct {
	Job     Job
	Outcome string
}

// RecoverStaleJobs fails the current attempt of running jobs whose lease
// lapsed before p.Now (the worker died or lost its network): a retry when
// attempts remain, else failed. Rows are taken with SKIP LOCKED, so every
// replica may run this at once.
func (s *Store) RecoverStaleJobs(ctx context.Context, p FailPolicy, limit int) ([]Transition, error) {
	var out []Transition
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE status = 'running' AND lease_expires_at < $1
			ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, p.Now, limit)
		stale, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "stale jobs")
		}
		for _, j := range stale {
			worker := "unknown"
			if j.WorkerID != nil {
				worker = *j.WorkerID
			}
			msg := fmt.Sprintf("worker %s stopped heartbeating; its lease expired at %s", worker, j.LeaseExpiresAt.UTC().Format(time.RFC3339))
			nj, outcome, err := failTransition(ctx, tx, j, msg, true, false, p)
			if err != nil {
				return err
			}
			out = append(out, Transition{Job: nj, Outcome: outcome})
		}
		return nil
	})
	return out, err
}

// PromoteRetries moves retry_wait jobs among ids whose time has come back to
// queued and returns them for pushing. Ids that are not due, or no longer
// waiting, are ignored.
func (s *Store) PromoteRetries(ctx context.Context, ids []uuid.UUID, now time.Time) ([]Job, error) {
	var out []Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE jobs SET status = 'queued', run_after = NULL, updated_at = $2
			WHERE id = ANY($1) AND status = 'retry_wait' AND run_after <= $2 RETURNING `+jobColumns, ids, now)
		var err error
		out, err = pgx.CollectRows(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return mapErr(err, "promote retries")
		}
		for _, j := range out {
			if err := insertJobEvent(ctx, tx, j, "job.requeued", map[string]any{"reason": "retry due"}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// OverdueRetries lists retry_wait jobs due before cutoff, for the
// reconciler to re-promote when their delayed-set entry was lost.
func (s *Store) OverdueRetries(ctx context.Context, cutoff time.Time, limit int) ([]uuid.UUID, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM jobs WHERE status = 'retry_wait' AND run_after < $1 ORDER BY run_after LIMIT $2`, cutoff, limit)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, mapErr(err, "overdue retries")
}

// QueuedJob is the dispatch hint of one queued job.
type QueuedJob struct {
	ID       uuid.UUID `db:"id"`
	OrgID    uuid.UUID `db:"org_id"`
	PoolID   string    `db:"pool_id"`
	Lane     string    `db:"lane"`
	Priority int       `db:"priority"`
}

// QueuedJobs lists queued jobs last changed before cutoff (older ones only,
// so a job whose push is still in flight is not pushed twice needlessly).
func (s *Store) QueuedJobs(ctx context.Context, cutoff time.Time) ([]QueuedJob, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, org_id, pool_id, lane, priority FROM jobs
		WHERE status = 'queued' AND NOT held AND updated_at < $1 ORDER BY created_at`, cutoff)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[QueuedJob])
	return js, mapErr(err, "queued jobs")
}

// PausedPoolIDs lists the pools whose row says paused.
func (s *Store) PausedPoolIDs(ctx context.Context) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM worker_pools WHERE status = 'paused' ORDER BY id`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapErr(err, "paused pools")
}

// TryAdvisoryLock runs fn only if this session wins the transaction-scoped
// advisory lock key; other replicas skip the round. It reports whether fn ran.
func (s *Store) TryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error) {
	ran := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, key).Scan(&got); err != nil {
			return mapErr(err, "advisory lock")
		}
		if !got {
			return nil
		}
		ran = true
		return fn(ctx)
	})
	return ran, err
}

// SweepStaleWorkers marks workers offline whose heartbeat is older than cutoff.
func (s *Store) SweepStaleWorkers(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE workers SET status = 'offline', current_job_id = NULL
		WHERE id IN (SELECT id FROM workers WHERE status <> 'offline' AND last_heartbeat_at < $1 FOR UPDATE SKIP LOCKED)`, cutoff)
	if err != nil {
		return 0, mapErr(err, "sweep workers")
	}
	return tag.RowsAffected(), nil
}

// LeaveWorker marks the pool's worker offline when its pod says it is
// exiting, as the Stale Worker Sweeper would once its heartbeat went stale.
// It reports whether a worker changed: an unknown id, one of another pool,
// or one already offline changes nothing.
func (s *Store) LeaveWorker(ctx context.Context, id, pool string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE workers SET status = 'offline', current_job_id = NULL
		WHERE id = $1 AND pool_id = $2 AND status <> 'offline'`, id, pool)
	if err != nil {
		return false, mapErr(err, "leave worker")
	}
	return tag.RowsAffected() == 1, nil
}

// ReapOfflineWorkers deletes workers offline since before cutoff.
func (s *Store) ReapOfflineWorkers(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM workers
		WHERE id IN (SELECT id FROM workers WHERE status = 'offline' AND last_heartbeat_at < $1 FOR UPDATE SKIP LOCKED)`, cutoff)
	if err != nil {
		return 0, mapErr(err, "reap workers")
	}
	return tag.RowsAffected(), nil
}

// RegisterWorker registers or refreshes a worker at now and returns its row;
// a drained or evicted worker keeps its status (and gets no work).
func (s *Store) RegisterWorker(ctx context.Context, w Worker, now time.Time) (Worker, error) {
	if w.Capabilities == nil {
		w.Capabilities = json.RawMessage(`{}`)
	}
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO workers (id, pool_id, lane, node, capabilities, registered_at, last_heartbeat_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, capabilities = EXCLUDED.capabilities,
			last_heartbeat_at = $6,
			status = CASE WHEN workers.status = 'offline' THEN 'online' ELSE workers.status END
		WHERE workers.pool_id = EXCLUDED.pool_id
		RETURNING `+workerColumns, w.ID, w.PoolID, w.Lane, w.Node, w.Capabilities, now)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Worker])
	if errors.Is(err, pgx.ErrNoRows) {
		return Worker{}, conflict("worker %s is registered in another pool", w.ID)
	}
	return out, mapErr(err, "worker")
}

// FleetCounts returns running jobs per pool and workers per pool and status.
func (s *Store) FleetCounts(ctx context.Context) (inFlight map[string]int, workers map[string]map[string]int, err error) {
	inFlight, workers = map[string]int{}, map[string]map[string]int{}
	// A split job waits on its tasks with no lease of its own: only what a
	// worker holds is in flight.
	rows, err := s.pool.Query(ctx, `SELECT pool_id, count(*) FROM jobs WHERE status = 'running' AND lease_expires_at IS NOT NULL GROUP BY pool_id`)
	if err != nil {
		return nil, nil, mapErr(err, "jobs in flight")
	}
	var (
		pool, status string
		n            int
	)
	_, err = pgx.ForEachRow(rows, []any{&pool, &n}, func() error { inFlight[pool] = n; return nil })
	if err != nil {
		return nil, nil, mapErr(err, "jobs in flight")
	}
	rows, err = s.pool.Query(ctx, `SELECT pool_id, status, count(*) FROM workers GROUP BY pool_id, status`)
	if err != nil {
		return nil, nil, mapErr(err, "worker counts")
	}
	_, err = pgx.ForEachRow(rows, []any{&pool, &status, &n}, func() error {
		if workers[pool] == nil {
			workers[pool] = map[string]int{}
		}
		workers[pool][status] = n
		return nil
	})
	return inFlight, workers, mapErr(err, "worker counts")
}

// execer runs a statement whose result is not read: a transaction, or a
// batch that sends several such statements in one round trip.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// batch queues statements to send together.
type batch struct{ pgx.Batch }

// Exec queues the statement; its error surfaces when the batch is sent.
func (b *batch) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (b *batch) send(ctx context.Context, tx pgx.Tx, what string) error {
	if b.Len() == 0 {
		return nil
	}
	return mapErr(tx.SendBatch(ctx, &b.Batch).Close(), what)
}
