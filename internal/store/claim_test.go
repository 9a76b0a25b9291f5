package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestClaimBatch: one statement claims many popped ids, and each claim of
// the batch comes out exactly as it would alone — claimed with its own
// token, lease, worker and job.started event, or refused for its own
// reason (a stale id, a drained worker, a worker of another pool) without
// touching the rest of the batch.
func TestClaimBatch(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	now := time.Now().UTC().Truncate(time.Millisecond)
	lease := now.Add(time.Minute)
	worker := func(id string) store.Worker {
		return store.Worker{ID: id, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive, Node: "node-1"}
	}

	var jobs []store.Job
	for range 5 {
		jobs = append(jobs, createJob(t, s, urlJob(b.Org.ID)))
	}
	asset := createAsset(t, s, b.Org.ID)
	nj := urlJob(b.Org.ID)
	nj.InputURL, nj.InputAssetID = nil, &asset.ID
	jobs = append(jobs, createJob(t, s, nj))

	// jobs[3] is already running (a stale id); drained-pod is drained;
	// other-pool-pod is registered in another pool.
	_, err := s.ClaimForWorker(ctx, jobs[3].ID, worker("first-pod"), []byte("first"), now, lease)
	require.NoError(t, err)
	_, err = s.RegisterWorker(ctx, worker("drained-pod"), now)
	require.NoError(t, err)
	_, err = s.DrainWorker(ctx, "drained-pod")
	require.NoError(t, err)
	other := createPool(t, s, b.Org.ID, "other")
	_, err = s.RegisterWorker(ctx, store.Worker{ID: "other-pool-pod", PoolID: other.ID, Lane: apiv1.LaneLive}, now)
	require.NoError(t, err)

	reqs := []store.ClaimRequest{
		{JobID: jobs[0].ID, Worker: worker("pod-0"), TokenHash: []byte("token-0"), Now: now, LeaseUntil: lease},
		{JobID: jobs[1].ID, Worker: worker("drained-pod"), TokenHash: []byte("token-1"), Now: now, LeaseUntil: lease},
		{JobID: jobs[2].ID, Worker: worker("other-pool-pod"), TokenHash: []byte("token-2"), Now: now, LeaseUntil: lease},
		{JobID: jobs[3].ID, Worker: worker("pod-3"), TokenHash: []byte("token-3"), Now: now, LeaseUntil: lease},
		{JobID: jobs[4].ID, Worker: worker("pod-4"), TokenHash: []byte("token-4"), Now: now, LeaseUntil: lease.Add(time.Second)},
		{JobID: jobs[5].ID, Worker: worker("pod-5"), TokenHash: []byte("token-5"), Now: now, LeaseUntil: lease},
	}
	res, err := s.ClaimBatch(ctx, reqs)
	require.NoError(t, err)
	require.Len(t, res, len(reqs))

	for _, i := range []int{0, 4, 5} {
		require.NoError(t, res[i].Err, "claim %d", i)
		got := res[i].Job
		assert.Equal(t, jobs[i].ID, got.ID, "claim %d got its own job", i)
		assert.Equal(t, store.JobRunning, got.Status)
		assert.Equal(t, reqs[i].Worker.ID, *got.WorkerID)
		assert.Equal(t, 1, got.Attempts)
		assert.True(t, reqs[i].LeaseUntil.Equal(*got.LeaseExpiresAt), "claim %d has its own lease", i)
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE id = $1 AND claim_token_hash = $2`, jobs[i].ID, reqs[i].TokenHash),
			"claim %d holds its own token", i)
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.started' AND data->>'worker_id' = $2`,
			jobs[i].ID, reqs[i].Worker.ID), "claim %d wrote its job.started", i)
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = $1 AND current_job_id = $2`, reqs[i].Worker.ID, jobs[i].ID),
			"claim %d registered its worker with its job", i)
	}
	assert.Empty(t, res[0].Job.InputObjectKey, "a URL input has no key")
	assert.Equal(t, asset.ObjectKey, res[5].Job.InputObjectKey, "an asset input comes with its key")

	require.ErrorIs(t, res[1].Err, store.ErrWorkerRefused, "a drained worker")
	require.ErrorIs(t, res[2].Err, store.ErrConflict, "a worker of another pool")
	require.ErrorIs(t, res[3].Err, store.ErrNotFound, "a stale id")
	for _, i := range []int{1, 2} {
		got, err := s.GetJob(ctx, b.Org.ID, jobs[i].ID)
		require.NoError(t, err)
		assert.Equal(t, store.JobQueued, got.Status, "refused claim %d left its job queued", i)
		assert.Zero(t, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.started'`, jobs[i].ID))
	}
	got, err := s.GetJob(ctx, b.Org.ID, jobs[3].ID)
	require.NoError(t, err)
	assert.Equal(t, "first-pod", *got.WorkerID, "the stale claim took nothing from the holder")
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = 'pod-3' AND current_job_id IS NULL`),
		"the stale claim's worker is registered, idle")
}

// TestClaimBatchRefusesRepeats: a batch that names a worker or a job twice
// is refused whole before anything runs (one upsert cannot touch a row
// twice, and one UPDATE would apply only one of two claims of a job).
func TestClaimBatchRefusesRepeats(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	j1, j2 := createJob(t, s, urlJob(b.Org.ID)), createJob(t, s, urlJob(b.Org.ID))
	now := time.Now()
	w := func(id string) store.Worker {
		return store.Worker{ID: id, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}
	}
	for name, reqs := range map[string][]store.ClaimRequest{
		"worker twice": {{JobID: j1.ID, Worker: w("pod"), Now: now, LeaseUntil: now}, {JobID: j2.ID, Worker: w("pod"), Now: now, LeaseUntil: now}},
		"job twice":    {{JobID: j1.ID, Worker: w("pod-a"), Now: now, LeaseUntil: now}, {JobID: j1.ID, Worker: w("pod-b"), Now: now, LeaseUntil: now}},
	} {
		_, err := s.ClaimBatch(ctx, reqs)
		require.Error(t, err, name)
	}
	assert.Zero(t, count(t, db, `SELECT count(*) FROM jobs WHERE status <> 'queued' AND id = ANY($1)`, []uuid.UUID{j1.ID, j2.ID}))
	assert.Zero(t, count(t, db, `SELECT count(*) FROM workers`))
}

// TestHeartbeatBatch: one statement runs many heartbeats, each answered as
// it would be alone — extended with its own lease and progress, told its
// job was cancelled, or refused for its own reason (another token, a job
// not running, an unknown id, another pool) without touching the rest.
func TestHeartbeatBatch(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	now := time.Now().UTC().Truncate(time.Millisecond)
	lease := now.Add(time.Minute)
	var jobs []store.Job
	for i := range 5 {
		j := createJob(t, s, urlJob(b.Org.ID))
		jobs = append(jobs, j)
		if i < 4 { // jobs[4] stays queued
			_, err := s.ClaimForWorker(ctx, j.ID, store.Worker{ID: fmt.Sprintf("pod-%d", i), PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive},
				[]byte(fmt.Sprintf("token-%d", i)), now, lease)
			require.NoError(t, err)
		}
	}
	_, err := s.CancelJob(ctx, b.Org.ID, jobs[2].ID)
	require.NoError(t, err)

	later := now.Add(10 * time.Second)
	req := func(i int, token string) store.HeartbeatRequest {
		return store.HeartbeatRequest{JobID: jobs[i].ID, PoolID: store.DefaultPoolID, TokenHash: []byte(token), Progress: 0.25 * float64(i+1),
			Now: later, LeaseUntil: later.Add(time.Duration(i+1) * time.Minute)}
	}
	unknown := req(0, "token-0")
	unknown.JobID = uuid.New()
	otherPool := req(3, "token-3")
	otherPool.PoolID = "elsewhere"
	reqs := []store.HeartbeatRequest{req(0, "token-0"), req(1, "stolen"), req(2, "token-2"), unknown, otherPool, req(4, "token-4")}
	res, err := s.HeartbeatBatch(ctx, reqs)
	require.NoError(t, err)
	require.Len(t, res, len(reqs))

	require.NoError(t, res[0].Err)
	assert.False(t, res[0].Cancelled)
	got, err := s.GetJob(ctx, b.Org.ID, jobs[0].ID)
	require.NoError(t, err)
	assert.True(t, reqs[0].LeaseUntil.Equal(*got.LeaseExpiresAt), "the lease of its own request")
	assert.InDelta(t, 0.25, got.Progress, 1e-9)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = 'pod-0' AND last_heartbeat_at = $1`, later), "its worker's heartbeat")

	require.ErrorIs(t, res[1].Err, store.ErrClaimToken, "another token")
	require.NoError(t, res[2].Err)
	assert.True(t, res[2].Cancelled, "a job cancelled while running")
	require.ErrorIs(t, res[3].Err, store.ErrNotFound, "an unknown id")
	require.ErrorIs(t, res[4].Err, store.ErrNotFound, "another pool's job")
	require.ErrorIs(t, res[5].Err, store.ErrClaimToken, "a queued job has no token to match")

	for _, i := range []int{1, 3} {
		got, err := s.GetJob(ctx, b.Org.ID, jobs[i].ID)
		require.NoError(t, err)
		assert.True(t, lease.Equal(*got.LeaseExpiresAt), "refused heartbeat %d left its job's lease alone", i)
		assert.Zero(t, got.Progress)
	}
	assert.Zero(t, count(t, db, `SELECT count(*) FROM workers WHERE id IN ('pod-1', 'pod-3') AND last_heartbeat_at = $1`, later))

	_, err = s.HeartbeatBatch(ctx, []store.HeartbeatRequest{req(0, "token-0"), req(0, "token-0")})
	require.Error(t, err, "a batch naming a job twice is refused")
}

// TestClaimQueuedAt: a claim, alone or in a batch, says when its job last
// became claimable: its updated_at, or its pool's last resume when that is
// later. A pool's resumed_at is set by the resume itself (a trigger, so
// every path that resumes sets it) and by nothing else: not by a pause, not
// by another change of the pool.
func TestClaimQueuedAt(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "gated")
	sc := store.PoolScope{OrgID: b.Org.ID}
	resumed := func() *time.Time {
		t.Helper()
		var at *time.Time
		require.NoError(t, db.QueryRow(ctx, `SELECT resumed_at FROM worker_pools WHERE id = $1`, pool.ID).Scan(&at))
		return at
	}
	_, err := s.UpdatePool(ctx, sc, pool.ID, func(p *store.PoolSettings) error { p.Name = "renamed"; return nil })
	require.NoError(t, err)
	_, err = s.SetPoolStatus(ctx, sc, pool.ID, "paused")
	require.NoError(t, err)
	require.Nil(t, resumed(), "neither a change nor a pause is a resume")
	p, err := s.SetPoolStatus(ctx, sc, pool.ID, "active")
	require.NoError(t, err)
	resumedAt := resumed()
	require.NotNil(t, resumedAt, "the resume is recorded")
	assert.True(t, p.UpdatedAt.Equal(*resumedAt), "at the resume's own time")
	_, err = s.UpdatePool(ctx, sc, pool.ID, func(p *store.PoolSettings) error { p.Name = "again"; return nil })
	require.NoError(t, err)
	assert.True(t, resumedAt.Equal(*resumed()), "a later change leaves it")

	queued := func(poolID string, at time.Time) store.Job {
		t.Helper()
		nj := urlJob(b.Org.ID)
		nj.PoolID = poolID
		j := createJob(t, s, nj)
		_, err := db.Exec(ctx, `UPDATE jobs SET updated_at = $2 WHERE id = $1`, j.ID, at)
		require.NoError(t, err)
		return j
	}
	before, after := resumedAt.Add(-time.Hour), resumedAt.Add(time.Minute)
	jobs := []store.Job{queued(pool.ID, before), queued(pool.ID, after), queued(store.DefaultPoolID, before), queued(pool.ID, before)}
	now := time.Now()
	claim := func(i int) store.ClaimRequest {
		return store.ClaimRequest{JobID: jobs[i].ID, Worker: store.Worker{ID: fmt.Sprintf("pod-%d", i), PoolID: jobs[i].PoolID, Lane: apiv1.LaneLive},
			TokenHash: []byte{byte(i)}, Now: now, LeaseUntil: now.Add(time.Minute)}
	}
	res, err := s.ClaimBatch(ctx, []store.ClaimRequest{claim(0), claim(1), claim(2)})
	require.NoError(t, err)
	one, err := s.ClaimForWorker(ctx, jobs[3].ID, claim(3).Worker, []byte{3}, now, now.Add(time.Minute))
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		got  store.ClaimResult
		want time.Time
	}{
		{"queued before the resume (batch)", res[0], *resumedAt},
		{"queued after the resume (batch)", res[1], after},
		{"in a pool never paused (batch)", res[2], before},
		{"queued before the resume (alone)", store.ClaimResult{Job: one}, *resumedAt},
	} {
		require.NoError(t, tt.got.Err, tt.name)
		assert.True(t, tt.want.Equal(tt.got.Job.QueuedAt), "%s: %s, want %s", tt.name, tt.got.Job.QueuedAt, tt.want)
	}
}

// TestClaimBatchesDoNotDeadlock: a pod that completes one job while it
// claims its next (the encoder's pods of a pool with jobs_per_pod above
// one), its heartbeat still running, has its worker row in a claim batch
// and a completion or heartbeat batch at once. Every batch locks the
// workers it touches in id order, so two batches naming the same pods in
// opposite orders wait for each other, never deadlock (before, Postgres
// aborted one of them after its deadlock_timeout: a second's stall for a
// whole batch of claims). A transaction holding one pod's row in the
// middle of the order makes both batches stop halfway through their
// locking, each holding some rows, every round.
func TestClaimBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	const pods, rounds = 16, 6
	worker := func(i int) store.Worker {
		return store.Worker{ID: fmt.Sprintf("pod-%02d", i), PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}
	}
	joined := func(err error, errs ...error) error { return errors.Join(append(errs, err)...) }
	for name, other := range map[string]func(s *store.Store, held []store.ClaimRequest) error{
		"completion": func(s *store.Store, held []store.ClaimRequest) error {
			reqs := make([]store.CompleteRequest, len(held))
			for i, h := range held {
				// Ascending by pod: held is descending.
				reqs[len(held)-1-i] = store.CompleteRequest{JobID: h.JobID, PoolID: store.DefaultPoolID, TokenHash: h.TokenHash,
					Outputs: json.RawMessage(`[]`), Now: time.Now().UTC()}
			}
			res, err := s.CompleteBatch(t.Context(), reqs)
			for _, r := range res {
				err = joined(err, r.Err)
			}
			return err
		},
		"heartbeat": func(s *store.Store, held []store.ClaimRequest) error {
			reqs := make([]store.HeartbeatRequest, len(held))
			for i, h := range held {
				now := time.Now().UTC()
				reqs[len(held)-1-i] = store.HeartbeatRequest{JobID: h.JobID, PoolID: store.DefaultPoolID, TokenHash: h.TokenHash,
					Progress: 0.5, Now: now, LeaseUntil: now.Add(time.Minute)}
			}
			res, err := s.HeartbeatBatch(t.Context(), reqs)
			for _, r := range res {
				err = joined(err, r.Err)
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, db := newStore(t)
			ctx := t.Context()
			b := bootstrap(t, s, "Acme")
			claims := func(token string) []store.ClaimRequest {
				now := time.Now().UTC()
				reqs := make([]store.ClaimRequest, pods)
				for i := range reqs {
					// The pods in descending order, the other batch ascending.
					w := worker(pods - 1 - i)
					reqs[i] = store.ClaimRequest{JobID: createJob(t, s, urlJob(b.Org.ID)).ID, Worker: w,
						TokenHash: []byte(token + w.ID), Now: now, LeaseUntil: now.Add(time.Minute)}
				}
				return reqs
			}
			claim := func(reqs []store.ClaimRequest) error {
				res, err := s.ClaimBatch(ctx, reqs)
				for _, r := range res {
					err = joined(err, r.Err)
				}
				return err
			}
			held := claims("round-0")
			require.NoError(t, claim(held))
			for round := 1; round <= rounds; round++ {
				next := claims(fmt.Sprintf("round-%d", round))
				middle, err := db.Begin(ctx)
				require.NoError(t, err)
				// Should the test fail while the batches wait, they are let
				// go before the pool closes, which waits for them.
				t.Cleanup(func() { _ = middle.Rollback(context.Background()) })
				_, err = middle.Exec(ctx, `SELECT 1 FROM workers WHERE id = $1 FOR UPDATE`, worker(pods/2).ID)
				require.NoError(t, err)
				// One after the other: started at one instant, the two
				// batches may go in one pipeline of the store's hot path,
				// one statement after the other on one connection, and never
				// lock rows at the same time. The second, sent while the
				// first's pipeline runs, goes in a pipeline of its own.
				claimed, othered := make(chan error, 1), make(chan error, 1)
				go func() { claimed <- claim(next) }()
				waiting(t, db, 1, "round %d: the claim batch waits for a row lock", round)
				go func() { othered <- other(s, held) }()
				waiting(t, db, 2, "round %d: both batches wait for a row lock", round)
				require.NoError(t, middle.Commit(ctx))
				require.NoError(t, <-claimed, "round %d: the claim batch", round)
				require.NoError(t, <-othered, "round %d: the %s batch", round, name)
				if name == "heartbeat" {
					// The pods' previous jobs are done with; claimed jobs of
					// a worker's past are not the test's business.
					_, err := db.Exec(ctx, `UPDATE jobs SET status = 'completed' WHERE id = ANY ($1)`, jobIDs(held))
					require.NoError(t, err)
				}
				held = next
			}
			assert.Equal(t, rounds*pods, count(t, db, `SELECT count(*) FROM jobs WHERE org_id = $1 AND status = 'completed'`, b.Org.ID))
			for _, h := range held {
				assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = $1 AND current_job_id = $2`, h.Worker.ID, h.JobID),
					"%s holds its last job", h.Worker.ID)
			}
		})
	}
}

// waiting waits until n of the test database's backends wait for a lock,
// and fails with what each backend waits for if that does not come.
func waiting(t *testing.T, db *pgxpool.Pool, n int, msgAndArgs ...any) {
	t.Helper()
	const waits = `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),
			coalesce(string_agg(concat_ws(' ', state, wait_event_type, wait_event, left(query, 60)), '; '), '')
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
	read := func() (got int, state string) {
		require.NoError(t, db.QueryRow(t.Context(), waits).Scan(&got, &state))
		return got, state
	}
	if !assert.Eventually(t, func() bool { got, _ := read(); return got == n }, 10*time.Second, 5*time.Millisecond, msgAndArgs...) {
		// Read again: the condition runs on a goroutine of its own, which
		// may still be running when Eventually gives up.
		got, state := read()
		t.Fatalf("%d backends wait for a lock, want %d: %s", got, n, state)
	}
}

func jobIDs(reqs []store.ClaimRequest) []uuid.UUID {
	ids := make([]uuid.UUID, len(reqs))
	for i, r := range reqs {
		ids[i] = r.JobID
	}
	return ids
}
