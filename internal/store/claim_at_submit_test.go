package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestSubmissionInsertedClaimed: a submission that carries a waiting
// claim (NewJob.Claim) is inserted running under it, in the statement
// that inserts it, exactly as the claim's own statement would have made
// it: its worker, token, lease and one attempt, the worker registered with
// the job as its current one, and job.queued then job.started in its
// history and to the webhooks. Where that statement would have refused
// the claim (the pool paused, the worker drained or of another pool) the
// job is inserted queued, as without a claim, and nothing else changes.
// Alone (CreateJob's statement) and in a batch (CreateJobs') alike.
func TestSubmissionInsertedClaimed(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	_, err := s.CreateWebhook(ctx, b.Org.ID, "https://acme.example/hooks", "", []string{"job.queued", "job.started"})
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	lease := now.Add(time.Minute)
	paused := createPool(t, s, b.Org.ID, "paused")
	_, err = s.SetPoolStatus(ctx, store.PoolScope{OrgID: b.Org.ID}, paused.ID, "paused")
	require.NoError(t, err)
	other := createPool(t, s, b.Org.ID, "other")
	_, err = s.RegisterWorker(ctx, store.Worker{ID: "other-pool-pod", PoolID: other.ID, Lane: apiv1.LaneLive}, now)
	require.NoError(t, err)
	_, err = s.RegisterWorker(ctx, store.Worker{ID: "drained-pod", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}, now)
	require.NoError(t, err)
	_, err = s.DrainWorker(ctx, "drained-pod")
	require.NoError(t, err)

	claim := func(pod, pool string) *store.JobClaim {
		return &store.JobClaim{Worker: store.Worker{ID: pod, PoolID: pool, Lane: apiv1.LaneLive, Node: "node-1"},
			TokenHash: []byte("token of " + pod), Now: now, LeaseUntil: lease}
	}
	type submission struct {
		name    string
		pool    string
		claim   *store.JobClaim
		claimed bool
	}
	// Each batch size runs every submission with pods of its own.
	submissions := func(tag string) []submission {
		return []submission{
			{name: "new pod", pool: store.DefaultPoolID, claim: claim("new-pod-"+tag, store.DefaultPoolID), claimed: true},
			{name: "no claim", pool: store.DefaultPoolID},
			{name: "paused pool", pool: paused.ID, claim: claim("paused-pod-"+tag, paused.ID)},
			{name: "drained worker", pool: store.DefaultPoolID, claim: claim("drained-pod", store.DefaultPoolID)},
			{name: "worker of another pool", pool: store.DefaultPoolID, claim: claim("other-pool-pod", store.DefaultPoolID)},
		}
	}
	check := func(t *testing.T, sub submission, res store.CreateResult) {
		t.Helper()
		require.NoError(t, res.Err, sub.name)
		require.True(t, res.Created, sub.name)
		j := res.Job
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.queued'`, j.ID), sub.name)
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE payload->>'job_id' = $1 AND event_type = 'job.queued'`, j.ID.String()), sub.name)
		if !sub.claimed {
			assert.Equal(t, store.JobQueued, j.Status, sub.name)
			assert.Nil(t, j.WorkerID, sub.name)
			assert.Nil(t, j.LeaseExpiresAt, sub.name)
			assert.Nil(t, j.StartedAt, sub.name)
			assert.Zero(t, j.Attempts, sub.name)
			assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.started'`, j.ID), sub.name)
			assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM jobs WHERE id = $1 AND claim_token_hash IS NOT NULL`, j.ID), sub.name)
			if sub.claim != nil {
				assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM workers WHERE current_job_id = $1`, j.ID), sub.name)
			}
			return
		}
		pod := sub.claim.Worker.ID
		assert.Equal(t, store.JobRunning, j.Status, sub.name)
		require.NotNil(t, j.WorkerID, sub.name)
		assert.Equal(t, pod, *j.WorkerID)
		assert.Equal(t, 1, j.Attempts)
		require.NotNil(t, j.LeaseExpiresAt)
		assert.True(t, lease.Equal(*j.LeaseExpiresAt), "the claim's lease")
		require.NotNil(t, j.StartedAt)
		assert.True(t, now.Equal(*j.StartedAt), "started when claimed")
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE id = $1 AND claim_token_hash = $2`, j.ID, sub.claim.TokenHash), "the claim's token")
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = $1 AND pool_id = $2 AND current_job_id = $3 AND node = 'node-1'`,
			pod, sub.pool, j.ID), "the worker registered with its job")
		events, err := s.ListJobEvents(ctx, b.Org.ID, j.ID, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"job.queued", "job.started"}, eventTypes(events), "queued, then started")
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'job.started'
			AND data->>'worker_id' = $2 AND (data->>'attempt')::int = 1`, j.ID, pod))
		assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE payload->>'job_id' = $1 AND event_type = 'job.started'
			AND payload->'data'->>'worker_id' = $2`, j.ID.String(), pod), "job.started went to the webhook")
		assert.Equal(t, 2, count(t, db, `SELECT count(DISTINCT event_id) FROM webhook_deliveries WHERE payload->>'job_id' = $1`, j.ID.String()),
			"each event has its own id")
		rows, err := db.Query(ctx, `SELECT event_type FROM webhook_deliveries WHERE payload->>'job_id' = $1
			ORDER BY next_attempt_at, created_at, id`, j.ID.String())
		require.NoError(t, err)
		order, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		assert.Equal(t, []string{"job.queued", "job.started"}, order, "delivered in order (ClaimDeliveries' order)")
	}

	for _, size := range []int{1, 5} {
		t.Run(fmt.Sprintf("batch of %d", size), func(t *testing.T) {
			subs := submissions(fmt.Sprint(size))
			if size == 1 {
				for _, sub := range subs {
					nj := urlJob(b.Org.ID)
					nj.PoolID, nj.Claim = sub.pool, sub.claim
					res, err := s.CreateJobs(ctx, []store.NewJob{nj})
					require.NoError(t, err)
					check(t, sub, res[0])
				}
				return
			}
			njs := make([]store.NewJob, len(subs))
			for i, sub := range subs {
				njs[i] = urlJob(b.Org.ID)
				njs[i].PoolID, njs[i].Claim = sub.pool, sub.claim
			}
			res, err := s.CreateJobs(ctx, njs)
			require.NoError(t, err)
			require.Len(t, res, len(subs))
			for i, sub := range subs {
				check(t, sub, res[i])
			}
		})
	}
	// The refused workers are as they were.
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = 'drained-pod' AND status = 'draining' AND current_job_id IS NULL`))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers WHERE id = 'other-pool-pod' AND pool_id = $1 AND current_job_id IS NULL`, other.ID))
}
