package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestClaimExactlyOnceAtScale is issue 19's load test of exactly-once:
// 10,000 jobs of four organizations (weights 1, 1, 2, 4: the pop script
// takes turns between them) pushed while 200 claimers take them through
// two coordinator instances, each with its own Postgres pool, sharing
// Postgres and Redis over loopback gRPC. A twentieth of the ids are on
// their lists twice, pushed in the same call, so two claimers pop the same
// id close together. Every job is claimed exactly once and completed
// exactly once, none is lost, every job is completed in Postgres after
// one attempt with one job.started and one job.completed event, and the
// lists end empty. Each claimer heartbeats every job once before it
// completes it. Claims, heartbeats and completions run with group commit on
// (the default): each instance must have made some statements that claimed,
// some that heartbeat and some that completed several jobs. A fifth of
// the jobs are offered to waiting claims (Coordinator.Offer, as a
// submission in an instance's process does) before they are pushed. While
// the claimers run, 1,000 more jobs are submitted by the submission
// statement, eight at a time, each reserving a waiting claim of one
// instance when one is idle (Coordinator.Reserve, as the API does) and so
// inserted claimed by it, and pushed only when no claim took it: half
// while the pushed backlog is claimed, half once the lists are empty.
// Nothing here is timed; the durations are logged.
func TestClaimExactlyOnceAtScale(t *testing.T) {
	t.Parallel()
	const (
		jobs      = 10000
		submitted = 1000 // during the run, inserted claimed where a claim waits
		claimers  = 200
		orgCount  = 4
		chunk     = 250 // ids per push
	)
	loadTests.RLock()
	defer loadTests.RUnlock()
	e := newEnv(t)
	ctx := t.Context()

	// A second replica has Postgres pools of its own, with the hot path's
	// as `mpegflow serve` opens them (the first runs everything on one).
	other, err := store.Open(ctx, e.db.Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	hot, err := store.OpenHotPath(ctx, e.db.Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(hot.Close)
	instances := []*instance{e.start(Config{}), e.startOn(store.New(other).WithHotPath(hot), Config{})}

	orgs := []store.Organization{e.org}
	for i := 1; i < orgCount; i++ {
		b, err := e.store.BootstrapOrg(ctx, fmt.Sprintf("Org %d", i), fmt.Sprintf("owner%d@example.com", i), auth.Owner)
		require.NoError(t, err)
		orgs = append(orgs, b.Org)
	}
	weights := []int{1, 1, 2, 4}
	for i, o := range orgs {
		w := weights[i]
		o, err := e.store.AdminUpdateOrg(ctx, o.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: &w})
		require.NoError(t, err)
		orgs[i] = o
	}

	// Commit every job first (as the API does before it pushes), then
	// push in chunks while the claimers run.
	begin := time.Now()
	ids := make([]uuid.UUID, jobs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range jobs {
		g.Go(func() error {
			u := "https://media.example.com/in.mp4"
			j, _, err := e.store.CreateJob(gctx, store.NewJob{OrgID: orgs[i%orgCount].ID, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive,
				MaxAttempts: 3, InputURL: &u, Spec: testSpec, Metadata: json.RawMessage(`{}`)})
			ids[i] = j.ID
			return err
		})
	}
	require.NoError(t, g.Wait())
	t.Logf("committed %d jobs in %s", jobs, time.Since(begin))

	var (
		mu        sync.Mutex
		claims    = make(map[string]int, jobs)
		completes = make(map[string]int, jobs)
		pushed    atomic.Bool
		producers atomic.Int32 // the pusher and the submitter, until each is done
		late      = make([]uuid.UUID, submitted)
		reserved  atomic.Int32
	)
	producers.Store(2)
	pusherDone := make(chan struct{})
	produced := func() {
		if producers.Add(-1) == 0 {
			pushed.Store(true)
		}
	}
	begin = time.Now()
	workers := []*worker{e.worker(instances[0].addr, store.DefaultPoolID), e.worker(instances[1].addr, store.DefaultPoolID)}
	g, gctx = errgroup.WithContext(ctx)
	laneKey := e.queue.Keys().Queue(store.DefaultPoolID, apiv1.LaneLive)
	g.Go(func() error {
		defer produced()
		defer close(pusherDone)
		// Offers find claims waiting from the first chunk on.
		for _, in := range instances {
			for in.coord.wakeups.waiters(laneKey) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		for start := 0; start < jobs; start += chunk {
			perOrg := map[int][]string{}
			for i := start; i < min(start+chunk, jobs); i++ {
				o := i % orgCount
				// A fifth of the jobs are offered to a waiting claim of
				// one instance, as a submission there would, and pushed
				// only if none took them; those pushed twice below are
				// pushed once more all the same, so a claim may pop an id
				// another claim was handed.
				if i%5 != 0 || !instances[i%2].coord.Offer(store.DefaultPoolID, apiv1.LaneLive, orgs[o].ID.String(), ids[i].String(), nil) {
					perOrg[o] = append(perOrg[o], ids[i].String())
				}
				if i%20 == 0 {
					perOrg[o] = append(perOrg[o], ids[i].String())
				}
			}
			for o, list := range perOrg {
				tn := queue.Tenant{Org: orgs[o].ID.String(), Weight: apiv1.ShareWeight(orgs[o].Plan, orgs[o].ShareWeight)}
				if err := e.queue.PushMany(gctx, store.DefaultPoolID, apiv1.LaneLive, tn, list); err != nil {
					return fmt.Errorf("push: %w", err)
				}
			}
		}
		return nil
	})
	g.Go(func() error {
		defer produced()
		u := "https://media.example.com/in.mp4"
		<-pusherDone
		secondHalf := submitted / 2 / 8 * 8 // the batch that starts it
		for start := 0; start < submitted; start += 8 {
			for start == secondHalf {
				// The backlog claimed, claims wait idle.
				n, err := e.queue.Len(gctx, store.DefaultPoolID, apiv1.LaneLive)
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			var (
				njs     []store.NewJob
				settles []func(store.Job, bool, func()) bool
			)
			for i := start; i < min(start+8, submitted); i++ {
				nj := store.NewJob{OrgID: orgs[i%orgCount].ID, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive,
					MaxAttempts: 3, InputURL: &u, Spec: testSpec, Metadata: json.RawMessage(`{}`)}
				var settle func(store.Job, bool, func()) bool
				nj.Claim, settle = instances[i%2].coord.Reserve(gctx, store.DefaultPoolID, apiv1.LaneLive, orgs[i%orgCount].ID.String())
				njs, settles = append(njs, nj), append(settles, settle)
			}
			res, err := e.store.CreateJobs(gctx, njs)
			for k, settle := range settles {
				i := start + k
				created := err == nil && res[k].Err == nil && res[k].Created
				if settle != nil && settle(res[k].Job, created, nil) {
					reserved.Add(1)
					late[i] = res[k].Job.ID
					continue
				}
				if !created {
					return fmt.Errorf("submit: %w %v", err, res)
				}
				late[i] = res[k].Job.ID
				o := i % orgCount
				tn := queue.Tenant{Org: orgs[o].ID.String(), Weight: apiv1.ShareWeight(orgs[o].Plan, orgs[o].ShareWeight)}
				if err := e.queue.Push(gctx, store.DefaultPoolID, apiv1.LaneLive, tn, late[i].String(), 0); err != nil {
					return fmt.Errorf("push: %w", err)
				}
			}
			if err != nil {
				return fmt.Errorf("submit: %w", err)
			}
		}
		return nil
	})
	for i := range claimers {
		w := workers[i%len(workers)]
		pod := fmt.Sprintf("pod-%03d", i)
		g.Go(func() error {
			for {
				done := pushed.Load() // read before the claim: an empty answer after it means empty for good
				var wait int32 = 50
				if done {
					wait = 0
				}
				j, err := w.claim(gctx, pod, wait)
				if err != nil {
					return fmt.Errorf("%s claim: %w", pod, err)
				}
				if j == nil {
					if done {
						return nil
					}
					continue
				}
				mu.Lock()
				claims[j.GetId()]++
				mu.Unlock()
				if hb, err := w.heartbeat(gctx, j, 0.5); err != nil || hb.GetCancel() || hb.GetLeaseExpiresUnixMs() == 0 {
					return fmt.Errorf("%s heartbeat %s: %+v, %w", pod, j.GetId(), hb, err)
				}
				if err := w.complete(gctx, j); err != nil {
					return fmt.Errorf("%s complete %s: %w", pod, j.GetId(), err)
				}
				mu.Lock()
				completes[j.GetId()]++
				mu.Unlock()
			}
		})
	}
	require.NoError(t, g.Wait())
	t.Logf("%d claimers on 2 instances claimed and completed %d jobs in %s", claimers, len(claims), time.Since(begin))
	t.Logf("%d of %d submitted jobs went to a reserved claim", reserved.Load(), submitted)
	assert.Positive(t, reserved.Load(), "some submissions found a claim waiting idle")
	ids = append(ids, late...)

	require.Len(t, claims, jobs+submitted, "every job claimed, none lost, nothing foreign")
	require.Len(t, completes, jobs+submitted, "every job completed")
	for _, id := range ids {
		assert.Equal(t, 1, claims[id.String()], "job %s claims", id)
		assert.Equal(t, 1, completes[id.String()], "job %s completions", id)
	}
	var handoffs float64
	for _, in := range instances {
		handoffs += testutil.ToFloat64(in.metrics.ClaimHandoffs)
	}
	t.Logf("%.0f jobs handed to waiting claims", handoffs)
	assert.Positive(t, handoffs, "some offers found a waiting claim")
	for _, in := range instances {
		assert.Positive(t, mustMetric(t, in.metrics.Registry, "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"}), "both instances served claims")
		assert.Positive(t, mustMetric(t, in.metrics.Registry, "mpegflow_grpc_requests_total", map[string]string{"method": "Complete"}), "both instances served completions")
		for _, kind := range []string{"claim", "heartbeat", "complete"} {
			statements, calls := histogramOf(t, in.metrics.Registry, "mpegflow_group_commit_batch_size", map[string]string{"kind": kind})
			t.Logf("group commit: %.0f %s calls in %d statements (%.1f a statement)", calls, kind, statements, calls/float64(statements))
			assert.Greater(t, calls, float64(statements), "group commit on: some statements made several %s calls", kind)
		}
	}

	type row struct {
		Status    string `db:"status"`
		Attempts  int    `db:"attempts"`
		Started   int    `db:"started"`
		Completed int    `db:"completed"`
		N         int    `db:"n"`
	}
	rows, err := e.db.Query(context.Background(), `
		WITH per_job AS (
			SELECT j.status, j.attempts,
				(SELECT count(*) FROM job_events ev WHERE ev.job_id = j.id AND ev.type = 'job.started')::int AS started,
				(SELECT count(*) FROM job_events ev WHERE ev.job_id = j.id AND ev.type = 'job.completed')::int AS completed
			FROM jobs j)
		SELECT status, attempts, started, completed, count(*)::int AS n FROM per_job GROUP BY 1, 2, 3, 4`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	require.NoError(t, err)
	assert.Equal(t, []row{{Status: store.JobCompleted, Attempts: 1, Started: 1, Completed: 1, N: jobs + submitted}}, got,
		"in Postgres every job is completed after one attempt, with one job.started and one job.completed event")

	for _, lane := range apiv1.Lanes {
		n, err := e.queue.Len(context.Background(), store.DefaultPoolID, lane)
		require.NoError(t, err)
		assert.Zero(t, n, "LLEN of the %s list is 0 afterwards", lane)
		members, err := e.queue.Members(context.Background(), store.DefaultPoolID, lane)
		require.NoError(t, err)
		assert.Empty(t, members, "no organization list of %s holds an id", lane)
	}
}
