package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrWorkerRefused means the claiming worker is drained or evicted: it gets
// no work, and the popped id goes back to its list.
var ErrWorkerRefused = errors.New("worker is draining or evicted")

// ErrPoolPaused means the job's pool is paused: nothing is claimed, and
// the id goes back to its list.
var ErrPoolPaused = errors.New("pool is paused")

// jobEventCTEs are the CTEs that record a job event and its webhook
// deliveries (the transactional outbox of insertJobEvent) for the job row
// of the CTE named src, inside the statement that changed the row: the
// deliveries carry the job as src returned it, after the change. typ and
// data are SQL expressions over src's columns and parameters; eventID is
// the parameter holding the event id. It is jobEventsCTEs for one event a
// job, kept apart for the claim and completion statements: written as
// jobEventsCTEs over a CTE of one event a job, claim+complete with 16 pods
// did 1,320-2,251 jobs/s against 1,625-2,509 (six pairs, session 39).
//
// The deliveries are made from src and the webhooks alone, not from the
// inserted events joined back to src: the event's columns are src's and
// its date is the statement's now() (job_events.created_at's default), and
// the planner, which guesses one row for a CTE, joined the two CTEs by a
// nested loop, a comparison for every pair of a batch's jobs even when the
// organization has no webhook (about a sixth of a 12-row completion's
// time).
func jobEventCTEs(src, typ, data, eventID string) string {
	return `ev AS (
			INSERT INTO job_events (job_id, org_id, type, data) SELECT id, org_id, ` + typ + `, ` + data + ` FROM ` + src + `),
		dl AS (
			INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, event_type, payload)
			SELECT gen_random_uuid(), w.id, j.org_id, ` + eventID + `::text, (` + typ + `)::text, jsonb_build_object(
				'id', ` + eventID + `::text, 'type', (` + typ + `)::text, 'org_id', j.org_id, 'job_id', j.id, 'pool_id', j.pool_id,
				'data', ` + data + `, 'at', now(), 'job', ` + webhookJobSnapshot + `)
			FROM ` + src + ` j JOIN webhooks w ON w.org_id = j.org_id AND w.enabled AND (` + typ + `)::text = ANY (w.events)
			WHERE j.parent_id IS NULL)`
}

// jobEventsCTEs is jobEventCTEs for several events a job: the events are
// the rows of the CTE evs (job_id, org_id, type, data, event_id, seq),
// inserted in job and seq order (so a job's history keeps them in that
// order), at most one of each type a job; the webhook deliveries carry the
// job as the CTE src (one row a job) returned it, and are dated a
// microsecond apart by seq, since a webhook's deliveries go out in the
// order of their dates and the statement's now() is one instant (the
// events' date, job_events.created_at's default).
//
// The jobs with a webhook (hooked) are found first, from src and the
// webhooks, and kept apart (MATERIALIZED) so that the events are joined to
// them only: the planner, which guesses one row for a CTE, joins CTEs by
// nested loops, a comparison for every pair of a batch's rows, which for
// an organization without webhooks is now a scan of nothing.
func jobEventsCTEs(evs, src string) string {
	return `ev AS (
			INSERT INTO job_events (job_id, org_id, type, data) SELECT job_id, org_id, type, data FROM ` + evs + ` ORDER BY job_id, seq),
		hooked AS MATERIALIZED (
			SELECT j.*, w.id AS webhook_id, w.events AS webhook_events
			FROM ` + src + ` j JOIN webhooks w ON w.org_id = j.org_id AND w.enabled
			WHERE j.parent_id IS NULL),
		dl AS (
			INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, event_type, payload, created_at, next_attempt_at)
			SELECT gen_random_uuid(), j.webhook_id, s.org_id, s.event_id, s.type, jsonb_build_object(
				'id', s.event_id, 'type', s.type, 'org_id', s.org_id, 'job_id', s.job_id, 'pool_id', j.pool_id,
				'data', s.data, 'at', now(), 'job', ` + webhookJobSnapshot + `),
				now() + s.seq * interval '1 microsecond', now() + s.seq * interval '1 microsecond'
			FROM hooked j JOIN ` + evs + ` s ON s.job_id = j.id AND s.type = ANY (j.webhook_events))`
}

// workerClaimUpsertSQL ends the INSERT INTO workers that registers a
// claiming worker (id, pool_id, lane, node, capabilities, registered_at,
// last_heartbeat_at, current_job_id): an existing row of the same pool
// has its node, capabilities and heartbeat refreshed, comes back online
// from offline, and takes the claimed job as its current one; a row of
// another pool is left alone.
const workerClaimUpsertSQL = `ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, capabilities = EXCLUDED.capabilities,
				last_heartbeat_at = EXCLUDED.last_heartbeat_at,
				status = CASE WHEN workers.status = 'offline' THEN 'online' ELSE workers.status END,
				current_job_id = COALESCE(EXCLUDED.current_job_id, workers.current_job_id)
			WHERE workers.pool_id = EXCLUDED.pool_id
			RETURNING status`

// queuedAtSQL is, in a query of jobs, when the job last became claimable:
// its updated_at (set by the submission, a requeue, a retry coming due, a
// release from hold) or, when later, its pool's last resume
// (worker_pools.resumed_at): a pause keeps queued jobs from being claimed.
const queuedAtSQL = `GREATEST(updated_at, (SELECT p.resumed_at FROM worker_pools p WHERE p.id = jobs.pool_id))`

// poolPausedSQL is, in a query of jobs, whether the job's pool is paused.
// Postgres has a pause before Redis's gate does (the pause commits, then
// sets the key), so a claim that checks it is refused from the commit on,
// whether its id came through the pop script or was handed over without
// one (dispatcher's Coordinator.Offer).
const poolPausedSQL = `EXISTS (SELECT 1 FROM worker_pools p WHERE p.id = jobs.pool_id AND p.status = 'paused')`

// claimJobsSQL claims popped ids for their workers in one statement (one
// round trip, one implicit transaction), for a batch of claims at once
// (group commit: docs/design/0019-control-plane-round-trips.md). For each
// input row: the conditional UPDATE that makes the job running under the
// caller's lease and claim token, the worker's registration (insert, or
// refresh node, capabilities and heartbeat, and set its current job), the
// job.started event and its webhook deliveries, the input asset's storage
// key, and when the job was last queued (ClaimedJob.QueuedAt). A job is
// taken only if it is queued in the row's pool and lane, not held and its
// pool not paused (poolPausedSQL), and the row's worker (as the statement
// found it) is not drained, evicted or registered in another pool. Each
// row stands alone: one row's job not being claimable changes nothing for
// the others.
//
// The rows are found by primary key alone (cur), locked in id order (two
// batches that share ids lock them in the same order), and the claim
// conditions are checked on the locked rows. The lookups of jobs and
// workers by the input name the parameter array itself (id = ANY ($2)),
// never a join to the unnested input, so that the planner, however wrong
// its guess of the input's size or a just-grown table's statistics, has
// the primary key to use (EXPLAIN on 100,000 queued jobs: index scans
// only). The UPDATE finds its rows by cur's ids alone: given the array as
// well, the generic plan costed the primary key by the array's guessed
// length and scanned all of jobs_org_created_idx for each row instead
// (TestHotPathPlansFindRowsByKey). And with status = 'queued' among the
// UPDATE's own conditions the planner may pick the partial jobs_queued_idx
// (pool, lane) and filter it by id, a scan of the whole queue per claim
// (measured: 1,999 index rows removed by filter with 2,000 jobs queued and
// fresh-table statistics).
//
// A batch names each worker and each job at most once (ClaimBatch checks):
// an upsert cannot touch one row twice, and an UPDATE joined to two input
// rows for one job would apply one of them.
//
// Rows are locked in key order, jobs by id and then workers by id, as
// completeJobsSQL locks them: a pod completes one job while it claims its
// next (jobs_per_pod), so a claim batch and a completion batch often name
// the same workers, and in any other order they could deadlock.
//
// The parameters are parallel arrays, one element per claim: $1 ordinal,
// $2 job id, $3 pool, $4 lane, $5 worker id, $6 claim token hash, $7 now,
// $8 lease deadline, $9 node, $10 capabilities, $11 event id. Each row
// returned carries its ordinal.
var claimJobsSQL = `
	WITH input AS (
			SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bytea[],
				$7::timestamptz[], $8::timestamptz[], $9::text[], $10::jsonb[], $11::text[])
				AS i (ord, job_id, pool_id, lane, worker_id, token_hash, now, lease_until, node, capabilities, event_id)),
		prev AS (
			SELECT w.id, w.pool_id, w.status FROM workers w WHERE w.id = ANY ($5::text[])),
		cur AS (
			SELECT id, pool_id, lane, status, held, ` + queuedAtSQL + ` AS queued_at, ` + poolPausedSQL + ` AS paused
			FROM jobs WHERE id = ANY ($2::uuid[])
			ORDER BY id FOR NO KEY UPDATE),
		j AS (
			UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, worker_id = i.worker_id,
				claim_token_hash = i.token_hash, lease_expires_at = i.lease_until, started_at = COALESCE(jobs.started_at, i.now),
				run_after = NULL, progress = 0, error = NULL, updated_at = i.now
			FROM cur JOIN input i ON i.job_id = cur.id
			WHERE jobs.id = cur.id
				AND cur.pool_id = i.pool_id AND cur.lane = i.lane AND cur.status = 'queued' AND NOT cur.held AND NOT cur.paused
				AND NOT EXISTS (SELECT 1 FROM prev WHERE prev.id = i.worker_id
					AND (prev.pool_id <> i.pool_id OR prev.status IN ('draining', 'evicted')))
			RETURNING ` + prefixed("jobs.", jobColumns) + `, i.ord, i.event_id, cur.queued_at),
		wk AS (
			INSERT INTO workers (id, pool_id, lane, node, capabilities, registered_at, last_heartbeat_at, current_job_id)
			SELECT i.worker_id, i.pool_id, i.lane, i.node, i.capabilities, i.now, i.now, j.id
			FROM input i LEFT JOIN j ON j.ord = i.ord
			ORDER BY i.worker_id
			` + workerClaimUpsertSQL + `),
		` + jobEventCTEs("j", "'job.started'", "jsonb_build_object('worker_id', j.worker_id, 'attempt', j.attempts)", "j.event_id") + `
	SELECT j.ord, ` + prefixed("j.", jobColumns) + `, a.object_key, j.queued_at
	FROM j LEFT JOIN assets a ON a.id = j.input_asset_id`

// claimJobSQL is claimJobsSQL for one claim, with scalar parameters: the
// statement a claim alone takes (light load), kept because its plan is
// the simpler and the cheaper to make. It claims a popped id for a worker in
// one statement (one round trip, one implicit transaction): the conditional UPDATE that makes the
// job running under the caller's lease and claim token, the worker's
// registration (insert, or refresh node, capabilities and heartbeat, and
// set its current job), the job.started event and its webhook deliveries,
// the input asset's storage key, and when the job was last queued. The job
// is taken only if it is queued in this pool and lane, not held and its
// pool not paused, and the worker (as the statement found it) is not drained, evicted or
// registered in another pool.
//
// The row is found by its primary key alone (cur) and the claim conditions
// are checked on the locked row: with status = 'queued' among the UPDATE's
// own conditions the planner may pick the partial jobs_queued_idx (pool,
// lane) and filter it by id, a scan of the whole queue per claim (measured:
// 1,999 index rows removed by filter with 2,000 jobs queued and fresh-table
// statistics).
//
// $1 job id, $2 pool, $3 lane, $4 worker id, $5 claim token hash, $6 now,
// $7 lease deadline, $8 node, $9 capabilities, $10 event id.
var claimJobSQL = `
	WITH prev AS (
			SELECT pool_id, status FROM workers WHERE id = $4),
		cur AS (
			SELECT id, pool_id, lane, status, held, ` + queuedAtSQL + ` AS queued_at, ` + poolPausedSQL + ` AS paused
			FROM jobs WHERE id = $1 FOR NO KEY UPDATE),
		j AS (
			UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, worker_id = $4,
				claim_token_hash = $5, lease_expires_at = $7, started_at = COALESCE(jobs.started_at, $6),
				run_after = NULL, progress = 0, error = NULL, updated_at = $6
			FROM cur
			WHERE jobs.id = cur.id AND cur.pool_id = $2 AND cur.lane = $3 AND cur.status = 'queued' AND NOT cur.held AND NOT cur.paused
				AND NOT EXISTS (SELECT 1 FROM prev WHERE prev.pool_id <> $2 OR prev.status IN ('draining', 'evicted'))
			RETURNING ` + prefixed("jobs.", jobColumns) + `, cur.queued_at),
		wk AS (
			INSERT INTO workers (id, pool_id, lane, node, capabilities, registered_at, last_heartbeat_at, current_job_id)
			VALUES ($4, $2, $3, $8, $9, $6, $6, (SELECT id FROM j))
			` + workerClaimUpsertSQL + `),
		` + jobEventCTEs("j", "'job.started'", "jsonb_build_object('worker_id', $4::text, 'attempt', j.attempts)", "$10") + `
	SELECT ` + prefixed("j.", jobColumns) + `, a.object_key, j.queued_at
	FROM j LEFT JOIN assets a ON a.id = j.input_asset_id`

// ClaimRequest is one claim of a batch: a popped id for worker Worker,
// under the claim token whose hash is TokenHash, until LeaseUntil.
type ClaimRequest struct {
	JobID      uuid.UUID
	Worker     Worker
	TokenHash  []byte
	Now        time.Time
	LeaseUntil time.Time
}

// ClaimResult is one claim's outcome, in the order of the requests: the
// job, or the error ClaimForWorker gives for it alone.
type ClaimResult struct {
	Job ClaimedJob
	Err error
}

// ClaimForWorker turns a popped id into a running job held by worker w in
// one statement (claimJobsSQL), registering or refreshing the worker as
// RegisterWorker does. When nothing was claimed it tells why, reading the
// worker once more (a path taken only by stale ids and refused workers):
// a worker registered in another pool gives a conflict, a drained or
// evicted one ErrWorkerRefused (the caller puts the id back), and
// otherwise the id was stale or duplicate: ErrNotFound, drop it and pop
// the next.
func (s *Store) ClaimForWorker(ctx context.Context, id uuid.UUID, w Worker, tokenHash []byte, now, leaseUntil time.Time) (ClaimedJob, error) {
	res, err := s.ClaimBatch(ctx, []ClaimRequest{{JobID: id, Worker: w, TokenHash: tokenHash, Now: now, LeaseUntil: leaseUntil}})
	if err != nil {
		return ClaimedJob{}, err
	}
	return res[0].Job, res[0].Err
}

// ClaimBatch makes every claim of reqs in one statement and returns one
// result per request, in order, each exactly what ClaimForWorker gives for
// that request alone. The error is for the statement as a whole (nothing
// of the batch was applied: it is one implicit transaction) or for a batch
// naming a worker or a job twice, which is refused before anything runs.
func (s *Store) ClaimBatch(ctx context.Context, reqs []ClaimRequest) ([]ClaimResult, error) {
	if len(reqs) == 1 {
		return s.claimOne(ctx, reqs[0])
	}
	n := len(reqs)
	var (
		ords                                = make([]int32, n)
		jobIDs                              = make(uuidArray, n)
		pools, lanes, workers, nodes, evIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		hashes                              = make([][]byte, n)
		nows, leases                        = make([]time.Time, n), make([]time.Time, n)
		caps                                = make([]json.RawMessage, n)
		seenWorker                          = make(map[string]bool, n)
		seenJob                             = make(map[uuid.UUID]bool, n)
	)
	for i, r := range reqs {
		if seenWorker[r.Worker.ID] || seenJob[r.JobID] {
			return nil, fmt.Errorf("claim batch: worker %s or job %s named twice", r.Worker.ID, r.JobID)
		}
		seenWorker[r.Worker.ID], seenJob[r.JobID] = true, true
		ords[i], jobIDs[i], pools[i], lanes[i], workers[i] = int32(i), r.JobID, r.Worker.PoolID, r.Worker.Lane, r.Worker.ID
		hashes[i], nows[i], leases[i], nodes[i], evIDs[i] = r.TokenHash, r.Now, r.LeaseUntil, r.Worker.Node, newID().String()
		caps[i] = r.Worker.Capabilities
		if caps[i] == nil {
			caps[i] = json.RawMessage(`{}`)
		}
	}
	out := make([]ClaimResult, n)
	claimed := make([]bool, n)
	var (
		ord int32
		cj  ClaimedJob
		key *string
	)
	targets := jobScanTargets(&cj.Job, []any{&ord}, &key, &cj.QueuedAt)
	err := s.pipe.scanEach(ctx, claimJobsSQL, []any{ords, jobIDs, pools, lanes, workers, hashes, nows, leases, nodes, caps, evIDs}, targets, func() {
		if key != nil {
			cj.InputObjectKey = *key
		}
		out[ord], claimed[ord] = ClaimResult{Job: cj}, true
		cj, key = ClaimedJob{}, nil
	})
	if err != nil {
		return nil, mapErr(err, "claim jobs")
	}
	for i, r := range reqs {
		if !claimed[i] {
			out[i].Err = s.whyNotClaimed(ctx, r)
		}
	}
	return out, nil
}

// claimOne is ClaimBatch of one request, with claimJobSQL.
func (s *Store) claimOne(ctx context.Context, r ClaimRequest) ([]ClaimResult, error) {
	caps := r.Worker.Capabilities
	if caps == nil {
		caps = json.RawMessage(`{}`)
	}
	var (
		out ClaimedJob
		key *string
	)
	err := s.pipe.queryRow(ctx, claimJobSQL, []any{r.JobID, r.Worker.PoolID, r.Worker.Lane, r.Worker.ID, r.TokenHash, r.Now, r.LeaseUntil,
		r.Worker.Node, caps, newID().String()}, jobScanTargets(&out.Job, nil, &key, &out.QueuedAt)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return []ClaimResult{{Err: s.whyNotClaimed(ctx, r)}}, nil
	case err != nil:
		return nil, mapErr(err, "claim job")
	}
	if key != nil {
		out.InputObjectKey = *key
	}
	return []ClaimResult{{Job: out}}, nil
}

// whyNotClaimed tells why a claim of a batch took nothing, from the worker
// and the job as they are now: a worker registered in another pool gives a
// conflict, a drained or evicted one ErrWorkerRefused, a job still
// claimable but for its pool's pause ErrPoolPaused, and otherwise the id
// was stale or a duplicate (ErrNotFound).
func (s *Store) whyNotClaimed(ctx context.Context, r ClaimRequest) error {
	var pool, status string
	err := s.pool.QueryRow(ctx, `SELECT pool_id, status FROM workers WHERE id = $1`, r.Worker.ID).Scan(&pool, &status)
	switch {
	case err != nil:
		return mapErr(err, "claiming worker")
	case pool != r.Worker.PoolID:
		return conflict("worker %s is registered in another pool", r.Worker.ID)
	case status == WorkerDraining || status == WorkerEvicted:
		return fmt.Errorf("claim job %s for worker %s: %w", r.JobID, r.Worker.ID, ErrWorkerRefused)
	}
	var paused bool
	err = s.pool.QueryRow(ctx, `SELECT `+poolPausedSQL+` FROM jobs WHERE id = $1 AND pool_id = $2 AND lane = $3 AND status = 'queued' AND NOT held`,
		r.JobID, r.Worker.PoolID, r.Worker.Lane).Scan(&paused)
	switch {
	case err == nil && paused:
		return fmt.Errorf("claim job %s: %w", r.JobID, ErrPoolPaused)
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return mapErr(err, "claimed job")
	}
	return fmt.Errorf("claim job %s: %w", r.JobID, ErrNotFound)
}
