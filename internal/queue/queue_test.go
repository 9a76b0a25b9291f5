package queue_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// tenant is the one organization of the tests that are not about fair
// share: with one organization a lane behaves as the FIFO it was before.
var tenant = queue.Tenant{Org: "org-1", Weight: 1}

func newQueue(t *testing.T) *queue.Queue {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return queue.New(rdb, queue.NewKeys(prefix))
}

func TestKeysFollowTheContract(t *testing.T) {
	t.Parallel()
	k := queue.NewKeys("")
	require.Equal(t, "mpegflow:queue:default", k.Queue("default", "live"))
	require.Equal(t, "mpegflow:queue:default:backfill", k.Queue("default", "backfill"))
	require.Equal(t, "mpegflow:delayed", k.Delayed())
	require.Equal(t, "mpegflow:pool:p1:paused", k.Paused("p1"))
	require.Equal(t, "mpegflow:events", k.Events())
	require.Equal(t, "mpegflow:auth:invalidate", k.KeyInvalidation())
	require.Equal(t, "t:queue:p1", queue.NewKeys("t").Queue("p1", "live"))
	require.Equal(t, "mpegflow:queue:default:org:o1", k.OrgQueue("default", "live", "o1"))
	require.Equal(t, "mpegflow:queue:default:backfill:org:o1", k.OrgQueue("default", "backfill", "o1"))
	require.Equal(t, "mpegflow:queue:default:orgs", k.Orgs("default", "live"))
	require.Equal(t, "mpegflow:queue:default:backfill:shares", k.Shares("default", "backfill"))
}

// TestPopScript drives the claim gate's contract: {"paused"} while the
// pause key exists (nothing popped), {"ids"} with no id on an empty lane,
// else the oldest id; urgent pushes go next; lanes and pools are separate
// lists.
func TestPopScript(t *testing.T) {
	t.Parallel()
	type push struct {
		pool, lane, id string
		priority       int
	}
	for name, tc := range map[string]struct {
		pushes []push
		paused bool
		pool   string
		lane   string
		want   queue.PopResult
		wantID string
		left   int64
	}{
		"empty lane":                {pool: "p", lane: "live", want: queue.PopEmpty},
		"oldest first":              {pushes: []push{{"p", "live", "a", 0}, {"p", "live", "b", 0}}, pool: "p", lane: "live", want: queue.PopJob, wantID: "a", left: 1},
		"urgent goes next":          {pushes: []push{{"p", "live", "a", 0}, {"p", "live", "u", 1}}, pool: "p", lane: "live", want: queue.PopJob, wantID: "u", left: 1},
		"paused holds work":         {pushes: []push{{"p", "live", "a", 0}}, paused: true, pool: "p", lane: "live", want: queue.PopPaused, left: 1},
		"paused holds backfill":     {pushes: []push{{"p", "backfill", "a", 0}}, paused: true, pool: "p", lane: "backfill", want: queue.PopPaused, left: 1},
		"lanes are separate":        {pushes: []push{{"p", "backfill", "a", 0}}, pool: "p", lane: "live", want: queue.PopEmpty},
		"backfill lane pops":        {pushes: []push{{"p", "live", "l", 0}, {"p", "backfill", "b", 0}}, pool: "p", lane: "backfill", want: queue.PopJob, wantID: "b"},
		"pools are separate":        {pushes: []push{{"other", "live", "a", 0}}, pool: "p", lane: "live", want: queue.PopEmpty},
		"another pool's pause":      {pushes: []push{{"p", "live", "a", 0}}, pool: "p", lane: "live", want: queue.PopJob, wantID: "a"},
		"duplicate ids pop as many": {pushes: []push{{"p", "live", "a", 0}, {"p", "live", "a", 0}}, pool: "p", lane: "live", want: queue.PopJob, wantID: "a", left: 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			ctx := t.Context()
			for _, p := range tc.pushes {
				require.NoError(t, q.Push(ctx, p.pool, p.lane, tenant, p.id, p.priority))
			}
			if tc.paused {
				require.NoError(t, q.SetPaused(ctx, tc.pool, true))
			}
			if name == "another pool's pause" {
				require.NoError(t, q.SetPaused(ctx, "other", true))
			}
			got, id, _, err := q.Pop(ctx, tc.pool, tc.lane)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantID, id)
			n, err := q.Len(ctx, tc.pool, tc.lane)
			require.NoError(t, err)
			require.Equal(t, tc.left, n, "ids left on the lane")
		})
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	require.NoError(t, q.Push(ctx, "p", "live", tenant, "a", 0))
	require.NoError(t, q.SetPaused(ctx, "p", true))
	paused, err := q.Paused(ctx, "p")
	require.NoError(t, err)
	require.True(t, paused)
	res, _, _, err := q.Pop(ctx, "p", "live")
	require.NoError(t, err)
	require.Equal(t, queue.PopPaused, res)

	require.NoError(t, q.SetPaused(ctx, "p", false))
	paused, err = q.Paused(ctx, "p")
	require.NoError(t, err)
	require.False(t, paused)
	res, id, _, err := q.Pop(ctx, "p", "live")
	require.NoError(t, err)
	require.Equal(t, queue.PopJob, res)
	require.Equal(t, "a", id)
}

// TestTakeDue drives the promoter's script: only due ids are taken, at most
// limit of them, and each is removed so it is taken once.
func TestTakeDue(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	require.NoError(t, q.Delay(ctx, "past", now.Add(-time.Minute)))
	require.NoError(t, q.Delay(ctx, "now", now))
	require.NoError(t, q.Delay(ctx, "soon", now.Add(500*time.Millisecond)))
	require.NoError(t, q.Delay(ctx, "later", now.Add(time.Hour)))

	ids, err := q.TakeDue(ctx, now, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"past"}, ids, "the limit holds and the earliest goes first")
	ids, err = q.TakeDue(ctx, now, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"now"}, ids, "a due time half a second ahead is not due in this second")
	ids, err = q.TakeDue(ctx, now.Add(time.Second), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"soon"}, ids)
	ids, err = q.TakeDue(ctx, now.Add(time.Second), 10)
	require.NoError(t, err)
	require.Empty(t, ids, "taken ids are gone")
}

// TestTakeDueConcurrently: promoters on every replica race; the script
// hands each id to exactly one of them.
func TestTakeDueConcurrently(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	const n = 300
	for i := range n {
		require.NoError(t, q.Delay(ctx, fmt.Sprintf("j%03d", i), now))
	}
	var mu sync.Mutex
	var taken []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				ids, err := q.TakeDue(ctx, now, 7)
				if err != nil || len(ids) == 0 {
					return
				}
				mu.Lock()
				taken = append(taken, ids...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, taken, n)
	slices.Sort(taken)
	require.Len(t, slices.Compact(taken), n, "no id was taken twice")
}

func TestPushManyMembersAndDropPool(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	require.NoError(t, q.PushMany(ctx, "p", "backfill", tenant, nil), "nothing to push is not an error")
	require.NoError(t, q.PushMany(ctx, "p", "backfill", tenant, []string{"a", "b", "c"}))
	require.NoError(t, q.Push(ctx, "p", "live", tenant, "l", 0))
	require.NoError(t, q.SetPaused(ctx, "p", true))
	ids, err := q.Members(ctx, "p", "backfill")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "b", "c"}, ids)

	require.NoError(t, q.DropPool(ctx, "p"))
	for _, lane := range apiv1.Lanes {
		n, err := q.Len(ctx, "p", lane)
		require.NoError(t, err)
		require.Zero(t, n, "lane %s dropped", lane)
	}
	paused, err := q.Paused(ctx, "p")
	require.NoError(t, err)
	require.False(t, paused, "the pause key goes with the pool")
}

func TestPoolOfParsesOnlyPoolKeys(t *testing.T) {
	t.Parallel()
	k := queue.NewKeys("")
	for key, want := range map[string]string{
		k.Queue("p1", "live"):              "p1",
		k.Queue("p1", "backfill"):          "p1",
		k.Paused("default"):                "default",
		k.Delayed():                        "",
		k.Events():                         "",
		"mpegflow:pool:p1":                 "",
		"mpegflow:queue:":                  "",
		"mpegflow:queue:a:b:c":             "",
		"other:queue:p1":                   "",
		"mpegflow:pool:p1:drained":         "",
		k.OrgQueue("p1", "live", "o1"):     "p1",
		k.OrgQueue("p1", "backfill", "o1"): "p1",
		k.Orgs("p1", "live"):               "p1",
		k.Orgs("p1", "backfill"):           "p1",
		k.Shares("p1", "live"):             "p1",
		k.Shares("p1", "backfill"):         "p1",
		"mpegflow:queue:p1:org:":           "",
		"mpegflow:queue:p1:org:a:b":        "",
		"mpegflow:queue:p1:backfillx":      "",
		"mpegflow:queue:p1:backfill:x":     "",
		"mpegflow:queue:p1:live":           "",
	} {
		pool, ok := k.PoolOf(key)
		require.Equal(t, want != "", ok, key)
		if ok {
			require.Equal(t, want, pool, key)
		}
	}
	require.Equal(t, "mpegflow:*", k.All())
	require.Equal(t, `t\*\?:*`, queue.NewKeys("t*?").All(), "glob characters of the prefix are escaped")
}

func TestPoolsListsPoolsWithKeys(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	other := newQueue(t) // another prefix on the same server
	ctx := t.Context()
	require.NoError(t, q.Push(ctx, "live-only", "live", tenant, "a", 0))
	require.NoError(t, q.Push(ctx, "backfill-only", "backfill", tenant, "b", 0))
	require.NoError(t, q.SetPaused(ctx, "paused-only", true))
	require.NoError(t, q.Delay(ctx, "c", time.Now()))
	require.NoError(t, other.Push(ctx, "elsewhere", "live", tenant, "d", 0))

	require.NoError(t, q.SetPaused(ctx, "live-only", true))
	pools, err := q.Pools(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"backfill-only": false, "live-only": true, "paused-only": true}, pools, "pool → paused")

	require.NoError(t, q.DropPool(ctx, "live-only"))
	pools, err = q.Pools(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"backfill-only": false, "paused-only": true}, pools)
}
