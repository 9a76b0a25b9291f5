package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// fairOrg is one organization of a fair-share scenario.
type fairOrg struct {
	name     string
	plan     string // "" = free
	override *int   // share_weight
	jobs     int
	urgent   int // of jobs, how many with priority 5 (created last)
}

// createFor commits n queued live jobs of org in pool (priority as given)
// without pushing them.
func (e *env) createFor(org uuid.UUID, pool string, n, priority int) []uuid.UUID {
	e.t.Helper()
	return e.createJobs(org, pool, n, priority, 3)
}

// setUpOrgs makes each fairOrg an organization (the first is env's own)
// with its plan and override, and commits its jobs; it returns the
// organization ids and each one's jobs, urgent ones last.
func (e *env) setUpOrgs(orgs []fairOrg) ([]uuid.UUID, [][]uuid.UUID) {
	e.t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, len(orgs))
	jobs := make([][]uuid.UUID, len(orgs))
	for i, o := range orgs {
		id := e.org.ID
		if i > 0 {
			b, err := e.store.BootstrapOrg(ctx, o.name, fmt.Sprintf("owner-%d@example.com", i), auth.Owner)
			require.NoError(e.t, err)
			id = b.Org.ID
		}
		if o.plan != "" {
			_, err := e.store.UpdateOrg(ctx, id, store.OrgPatch{Plan: &o.plan})
			require.NoError(e.t, err)
		}
		if o.override != nil {
			_, err := e.store.AdminUpdateOrg(ctx, id, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: o.override})
			require.NoError(e.t, err)
		}
		ids[i] = id
		jobs[i] = append(e.createFor(id, store.DefaultPoolID, o.jobs-o.urgent, 0), e.createFor(id, store.DefaultPoolID, o.urgent, 5)...)
	}
	return ids, jobs
}

// pushAs pushes ids of org as the API does: with the weight Postgres holds.
func (e *env) pushAs(org uuid.UUID, ids []uuid.UUID, priority int) {
	e.t.Helper()
	ctx := context.Background()
	tenants, err := queue.Tenants(ctx, e.store, []uuid.UUID{org})
	require.NoError(e.t, err)
	for _, id := range ids {
		require.NoError(e.t, e.queue.Push(ctx, store.DefaultPoolID, "live", tenants[org], id.String(), priority))
	}
}

// queuedInPostgres counts the pool's queued rows: the truth KEDA's list
// length must follow.
func (e *env) queuedInPostgres(pool string) int64 {
	e.t.Helper()
	var n int64
	require.NoError(e.t, e.db.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE status = 'queued' AND pool_id = $1`, pool).Scan(&n))
	return n
}

// claimOrgs claims n jobs through the coordinator and returns, in claim
// order, the organization and id of each; after every claim the list KEDA
// counts is as long as the jobs still queued in Postgres.
func claimOrgs(t *testing.T, e *env, w *worker, n int) (orgs, ids []string) {
	t.Helper()
	for i := range n {
		j := w.mustClaim(t, fmt.Sprintf("pod-%d", i))
		orgs, ids = append(orgs, j.GetOrgId()), append(ids, j.GetId())
		require.Equal(t, e.queuedInPostgres(store.DefaultPoolID), e.queueLen(store.DefaultPoolID), "after claim %d, LLEN equals the queued jobs", i+1)
	}
	return orgs, ids
}

func lastPosition(orgs []string, org uuid.UUID) (last, count int) {
	for i, o := range orgs {
		if o == org.String() {
			last, count = i+1, count+1
		}
	}
	return last, count
}

// TestFairShareClaims drives fair share end to end: jobs committed in
// Postgres, pushed with the weights Postgres holds, claimed over gRPC.
func TestFairShareClaims(t *testing.T) {
	t.Parallel()
	three := 3
	for name, tc := range map[string]struct {
		orgs   []fairOrg
		claims int
		// wantAll: every job of orgs[1] is claimed within the claims.
		wantAll bool
		// wantShare: orgs[0]'s share of the claims, within 5 %.
		wantShare float64
	}{
		"a newcomer does not wait behind a backlog": {
			orgs:    []fairOrg{{name: "A", jobs: 2000}, {name: "B", jobs: 20}},
			claims:  40,
			wantAll: true,
		},
		"share_weight 3 against a free plan": {
			orgs:      []fairOrg{{name: "A", override: &three, jobs: 400}, {name: "B", jobs: 200}},
			claims:    400,
			wantShare: 0.75,
		},
		"plan defaults: enterprise 4, free 1": {
			orgs:      []fairOrg{{name: "A", plan: "enterprise", jobs: 300}, {name: "B", jobs: 100}},
			claims:    250,
			wantShare: 0.8,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.start(Config{})
			w := e.worker(in.addr, store.DefaultPoolID)
			orgs, jobs := e.setUpOrgs(tc.orgs)
			for i := range orgs { // in order: orgs[1] queues after orgs[0]'s backlog
				e.pushAs(orgs[i], jobs[i], 0)
			}
			require.Equal(t, e.queuedInPostgres(store.DefaultPoolID), e.queueLen(store.DefaultPoolID))

			got, _ := claimOrgs(t, e, w, tc.claims)
			last, countB := lastPosition(got, orgs[1])
			if tc.wantAll {
				require.Equal(t, tc.orgs[1].jobs, countB, "all of B's jobs are claimed within %d claims", tc.claims)
				t.Logf("B's %d jobs behind A's %d: B's last claimed at position %d", tc.orgs[1].jobs, tc.orgs[0].jobs, last)
			}
			if tc.wantShare > 0 {
				countA := tc.claims - countB
				want := tc.wantShare * float64(tc.claims)
				require.InDelta(t, want, float64(countA), want*0.05, "A's claims")
				t.Logf("%d claims: A %d, B %d", tc.claims, countA, countB)
			}
		})
	}
}

// TestFairShareAfterFlushAll: Redis loses everything; the queue
// reconciler rebuilds the organizations' lists, the turn order and the
// weights from Postgres, so fair share (and urgency within an
// organization) holds for the rebuilt queue.
func TestFairShareAfterFlushAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPrivateRedisEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{ReconcileGrace: 10 * time.Second})
	w := e.worker(in.addr, store.DefaultPoolID)
	three := 3
	orgs, jobs := e.setUpOrgs([]fairOrg{{name: "A", jobs: 300, urgent: 1}, {name: "B", override: &three, jobs: 30}})
	e.pushAs(orgs[0], jobs[0][:299], 0)
	e.pushAs(orgs[0], jobs[0][299:], 5)
	e.pushAs(orgs[1], jobs[1], 0)

	require.NoError(t, e.rdb.FlushAll(ctx).Err())
	require.Zero(t, e.queueLen(store.DefaultPoolID))
	fc.Step(time.Minute)
	changed, err := in.services.ReconcileQueues(ctx)
	require.NoError(t, err)
	require.Equal(t, 330, changed, "every queued job is pushed back")
	require.EqualValues(t, 330, e.queueLen(store.DefaultPoolID), "LLEN counts them")
	changed, err = in.services.ReconcileQueues(ctx)
	require.NoError(t, err)
	require.Zero(t, changed, "a second round finds nothing to fix")

	got, ids := claimOrgs(t, e, w, 40)
	last, countB := lastPosition(got, orgs[1])
	require.Equal(t, 30, countB, "B (weight 3) has all 30 claimed within 40 claims")
	for i, o := range got {
		if o == orgs[0].String() {
			require.Equal(t, jobs[0][299].String(), ids[i], "A's urgent job is A's first claim")
			break
		}
	}
	t.Logf("after FLUSHALL and rebuild: B's 30 jobs (weight 3) against A's 300, B's last at position %d", last)
}
