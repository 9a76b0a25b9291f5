package queue_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// ids returns n job ids named prefix-0000 … in push order.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// popAll claims until the lane is empty, checking after every claim that
// the list KEDA counts is as long as the ids still queued, and returns the
// organization of each claim in order.
func popAll(t *testing.T, q *queue.Queue, pool, lane string, limit int) (orgs, got []string) {
	t.Helper()
	ctx := t.Context()
	for range limit {
		res, id, org, err := q.Pop(ctx, pool, lane)
		require.NoError(t, err)
		if res == queue.PopEmpty {
			break
		}
		require.Equal(t, queue.PopJob, res)
		orgs, got = append(orgs, org), append(got, id)
		members, err := q.Members(ctx, pool, lane)
		require.NoError(t, err)
		n, err := q.Len(ctx, pool, lane)
		require.NoError(t, err)
		require.Equal(t, int64(len(members)), n, "after claim %d the KEDA list counts every queued id", len(got))
	}
	return orgs, got
}

// TestFairShareNewcomer: an organization with 2,000 queued jobs does not
// make a newcomer wait; with equal weights they alternate, so the
// newcomer's 20 are claimed within the first 40 claims.
func TestFairShareNewcomer(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	a, b := queue.Tenant{Org: "org-a", Weight: 1}, queue.Tenant{Org: "org-b", Weight: 1}
	require.NoError(t, q.PushMany(ctx, "p", "live", a, ids("a", 2000)))
	require.NoError(t, q.PushMany(ctx, "p", "live", b, ids("b", 20)))
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	require.Equal(t, int64(2020), n)

	orgs, got := popAll(t, q, "p", "live", 60)
	last := 0
	for i, org := range orgs {
		if org == b.Org {
			last = i + 1
		}
	}
	require.LessOrEqual(t, last, 40, "position of org-b's last claim")
	var bIDs []string
	for i, id := range got {
		if orgs[i] == b.Org {
			bIDs = append(bIDs, id)
		}
	}
	require.Equal(t, ids("b", 20), bIDs, "org-b's jobs in the order they were pushed")
	t.Logf("org-b's 20 jobs: last claimed at position %d of %d", last, len(got))
}

// TestFairShareWeights: both organizations backlogged, claims follow the
// weights within 5 %.
func TestFairShareWeights(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		wa, wb int
		claims int
	}{
		"3 to 1":    {wa: 3, wb: 1, claims: 400},
		"1 to 3":    {wa: 1, wb: 3, claims: 400},
		"equal":     {wa: 1, wb: 1, claims: 400},
		"4 to 1":    {wa: 4, wb: 1, claims: 500},
		"100 to 1":  {wa: 100, wb: 1, claims: 505},
		"default 0": {wa: 0, wb: 2, claims: 300}, // 0 = stored weight, none stored = 1
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			ctx := t.Context()
			a, b := queue.Tenant{Org: "org-a", Weight: tc.wa}, queue.Tenant{Org: "org-b", Weight: tc.wb}
			require.NoError(t, q.PushMany(ctx, "p", "live", a, ids("a", tc.claims)))
			require.NoError(t, q.PushMany(ctx, "p", "live", b, ids("b", tc.claims)))
			orgs, _ := popAll(t, q, "p", "live", tc.claims)
			require.Len(t, orgs, tc.claims)
			na := float64(countOf(orgs, a.Org))
			wa, wb := float64(max(tc.wa, 1)), float64(max(tc.wb, 1))
			want := float64(tc.claims) * wa / (wa + wb)
			require.InDelta(t, want, na, want*0.05, "claims of org-a (weights %v:%v)", wa, wb)
			t.Logf("weights %v:%v over %d claims: org-a %v, org-b %v", wa, wb, tc.claims, na, float64(tc.claims)-na)
		})
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestFairSharePriorityWithinOrg: urgent ids go next within their
// organization, without taking another organization's turn.
func TestFairSharePriorityWithinOrg(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	a, b := queue.Tenant{Org: "org-a", Weight: 1}, queue.Tenant{Org: "org-b", Weight: 1}
	require.NoError(t, q.PushMany(ctx, "p", "live", a, []string{"a1", "a2"}))
	require.NoError(t, q.PushMany(ctx, "p", "live", b, []string{"b1", "b2"}))
	require.NoError(t, q.Push(ctx, "p", "live", a, "a-urgent", 5))
	require.NoError(t, q.Push(ctx, "p", "live", b, "b-urgent", 1))
	require.NoError(t, q.Push(ctx, "p", "live", a, "a3", 0))
	_, got := popAll(t, q, "p", "live", 10)
	require.Equal(t, []string{"a-urgent", "b-urgent", "a1", "b1", "a2", "b2", "a3"}, got)
}

// TestFairShareRejoinDoesNotJump: an organization that keeps one job
// queued at a time (its list empties at every claim and refills) gets no
// more than its share against two backlogged organizations.
func TestFairShareRejoinDoesNotJump(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	a, b, c := queue.Tenant{Org: "org-a", Weight: 1}, queue.Tenant{Org: "org-b", Weight: 1}, queue.Tenant{Org: "org-0", Weight: 1}
	require.NoError(t, q.PushMany(ctx, "p", "live", a, ids("a", 300)))
	require.NoError(t, q.PushMany(ctx, "p", "live", b, ids("b", 300)))
	require.NoError(t, q.Push(ctx, "p", "live", c, "c", 0))
	claimsOfC := 0
	for i := range 300 {
		res, _, org, err := q.Pop(ctx, "p", "live")
		require.NoError(t, err)
		require.Equal(t, queue.PopJob, res)
		if org == c.Org {
			claimsOfC++
			require.NoError(t, q.Push(ctx, "p", "live", c, fmt.Sprintf("c%d", i), 0))
		}
	}
	require.InDelta(t, 100, claimsOfC, 2, "org-0 sorts first and refills at once, yet gets a third")
}

// TestRepair: the reconciler's repair rebuilds the list KEDA counts when
// it disagrees with the organizations' lists, puts back organizations that
// lost their place in the turn order, refreshes weights, and changes
// nothing on a consistent lane.
func TestRepair(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	q := queue.New(rdb, queue.NewKeys(prefix))
	k := q.Keys()
	ctx := t.Context()
	a, b := queue.Tenant{Org: "org-a", Weight: 1}, queue.Tenant{Org: "org-b", Weight: 1}
	require.NoError(t, q.PushMany(ctx, "p", "live", a, ids("a", 30)))
	require.NoError(t, q.PushMany(ctx, "p", "live", b, ids("b", 20)))

	queued, had, err := q.Repair(ctx, "p", "live", []queue.Tenant{a, b})
	require.NoError(t, err)
	require.Equal(t, [2]int64{50, 50}, [2]int64{queued, had}, "a consistent lane is left alone")

	// A list written before fair share: ids the organizations' lists do not hold.
	require.NoError(t, rdb.LPush(ctx, k.Queue("p", "live"), "old-1", "old-2").Err())
	// org-b lost its place in the turn order.
	require.NoError(t, rdb.ZRem(ctx, k.Orgs("p", "live"), b.Org).Err())
	members, err := q.Members(ctx, "p", "live")
	require.NoError(t, err)
	require.Len(t, members, 30, "only org-a's ids are reachable before the repair")

	queued, had, err = q.Repair(ctx, "p", "live", []queue.Tenant{a, {Org: b.Org, Weight: 3}})
	require.NoError(t, err)
	require.Equal(t, [2]int64{50, 52}, [2]int64{queued, had})
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	require.Equal(t, int64(50), n, "the KEDA list counts the queued ids again")
	members, err = q.Members(ctx, "p", "live")
	require.NoError(t, err)
	require.ElementsMatch(t, append(ids("a", 30), ids("b", 20)...), members)

	orgs, _ := popAll(t, q, "p", "live", 16)
	require.Equal(t, 12, countOf(orgs, b.Org), "org-b is back, with the weight 3 the repair set")

	// An organization list whose organization lost its place and has no
	// queued job in Postgres stays unreachable; its ids are stale.
	require.NoError(t, rdb.Del(ctx, k.Orgs("p", "live")).Err())
	queued, _, err = q.Repair(ctx, "p", "live", nil)
	require.NoError(t, err)
	require.Zero(t, queued)
	n, err = q.Len(ctx, "p", "live")
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestPushNeedsTheOrganization: an id without an organization cannot take
// part in fair share and is refused, not queued under a made-up one.
func TestPushNeedsTheOrganization(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	require.Error(t, q.Push(ctx, "p", "live", queue.Tenant{}, "a", 0))
	require.Error(t, q.PushMany(ctx, "p", "live", queue.Tenant{Org: "a:b"}, []string{"a"}))
	require.Error(t, q.Push(ctx, "p", "live", queue.Tenant{Org: "o", Weight: -1}, "a", 0))
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestDropPoolDropsFairShareKeys: a deleted pool leaves no organization
// list, turn order or share state behind, and Pools sees the pool from any
// of them.
func TestDropPoolDropsFairShareKeys(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	q := queue.New(rdb, queue.NewKeys(prefix))
	ctx := t.Context()
	for _, lane := range []string{"live", "backfill"} {
		require.NoError(t, q.Push(ctx, "p", lane, queue.Tenant{Org: "org-a", Weight: 2}, "a", 0))
		require.NoError(t, q.Push(ctx, "p", lane, queue.Tenant{Org: "org-b", Weight: 1}, "b", 0))
		_, _, _, err := q.Pop(ctx, "p", lane) // org-a's pass is now kept in the shares hash
		require.NoError(t, err)
	}
	require.NoError(t, rdb.Del(ctx, q.Keys().Queue("p", "live"), q.Keys().Queue("p", "backfill")).Err())
	pools, err := q.Pools(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"p": false}, pools, "the pool's other keys name it")

	require.NoError(t, q.DropPool(ctx, "p"))
	keys, err := rdb.Keys(ctx, q.Keys().All()).Result()
	require.NoError(t, err)
	slices.Sort(keys)
	require.Empty(t, keys)
}
