package queue_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestPopMany: pops of several lanes in one round trip and one script call
// a lane, each answered as a lone Pop would be: two pops of one lane take
// two ids, in order; every pop of a paused pool and of an empty lane says
// so. After the server lost its scripts (a restart, here SCRIPT FLUSH) the
// calls are still made, each once, a lane named twice included.
func TestPopMany(t *testing.T) {
	t.Parallel()
	// A Redis of its own: it flushes the scripts, which would fail other
	// tests' round-trip counts.
	rdb := testenv.PrivateRedis(t)
	q := queue.New(rdb, queue.NewKeys(queue.DefaultPrefix))
	ctx := t.Context()
	require.NoError(t, q.PushMany(ctx, "p", "live", tenant, []string{"a", "b", "c"}))
	require.NoError(t, q.Push(ctx, "gated", "live", tenant, "g", 0))
	require.NoError(t, q.SetPaused(ctx, "gated", true))
	_, _, _, err := q.Pop(ctx, "none", "live") // loads the script
	require.NoError(t, err)

	p, gated := queue.Lane{Pool: "p", Lane: "live"}, queue.Lane{Pool: "gated", Lane: "live"}
	lanes := []queue.Lane{p, gated, p, {Pool: "p", Lane: "backfill"}, gated}
	trips := &commandCounter{}
	rdb.AddHook(trips)
	got := q.PopMany(ctx, lanes)
	require.EqualValues(t, 1, trips.n.Load(), "one round trip")
	require.EqualValues(t, 3, trips.cmds.Load(), "one script call a lane, however many times it is named")
	require.Len(t, got, 5)
	for _, a := range got {
		require.NoError(t, a.Err)
	}
	assert.Equal(t, queue.Popped{Result: queue.PopJob, ID: "a", Org: tenant.Org}, got[0])
	assert.Equal(t, queue.PopPaused, got[1].Result)
	assert.Equal(t, queue.Popped{Result: queue.PopJob, ID: "b", Org: tenant.Org}, got[2], "the second pop of a lane takes the next id")
	assert.Equal(t, queue.PopEmpty, got[3].Result)
	assert.Equal(t, queue.PopPaused, got[4].Result, "every pop of a paused pool is refused")

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	got = q.PopMany(ctx, []queue.Lane{p, gated, p})
	for _, a := range got {
		require.NoError(t, a.Err)
	}
	assert.Equal(t, "c", got[0].ID, "popped once the script was loaded again")
	assert.Equal(t, queue.PopPaused, got[1].Result)
	assert.Equal(t, queue.PopEmpty, got[2].Result, "the lane's second pop finds it empty: its call ran once")
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	assert.Zero(t, n, "each pop made once: nothing popped twice or left behind")
	paused, err := q.Len(ctx, "gated", "live")
	require.NoError(t, err)
	assert.EqualValues(t, 1, paused, "a paused pool keeps its id")
}

// TestPopManyServesInTurn: a lane named n times in PopMany takes the ids
// that n Pops one after another would, in that order, organizations
// served by weight (an organization's list running dry in the middle of a
// call included), and the list KEDA counts stays as long as the ids still
// queued; a call for more ids than are left answers the rest empty.
func TestPopManyServesInTurn(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	tenants := []struct {
		tenant queue.Tenant
		n      int
	}{{queue.Tenant{Org: "org-a", Weight: 1}, 7}, {queue.Tenant{Org: "org-b", Weight: 3}, 9}, {queue.Tenant{Org: "org-c", Weight: 1}, 2}}
	for _, pool := range []string{"one", "many"} {
		for _, tn := range tenants {
			require.NoError(t, q.PushMany(ctx, pool, "live", tn.tenant, ids(tn.tenant.Org, tn.n)))
		}
	}
	type pop struct{ id, org string }
	var want []pop
	orgs, oneIDs := popAll(t, q, "one", "live", 100)
	for i, id := range oneIDs {
		want = append(want, pop{id, orgs[i]})
	}
	require.Len(t, want, 18)

	var got []pop
	lane := queue.Lane{Pool: "many", Lane: "live"}
	for len(got) < len(want) {
		answers := q.PopMany(ctx, []queue.Lane{lane, lane, lane, lane, lane})
		left := len(want) - len(got)
		for i, a := range answers {
			require.NoError(t, a.Err)
			if i >= left {
				require.Equal(t, queue.PopEmpty, a.Result, "pop %d of a call with %d ids left", i+1, left)
				continue
			}
			require.Equal(t, queue.PopJob, a.Result)
			got = append(got, pop{a.ID, a.Org})
		}
		members, err := q.Members(ctx, "many", "live")
		require.NoError(t, err)
		n, err := q.Len(ctx, "many", "live")
		require.NoError(t, err)
		require.Equal(t, int64(len(members)), n, "after %d pops the KEDA list counts every queued id", len(got))
		require.EqualValues(t, len(want)-len(got), n)
	}
	require.Equal(t, want, got)
}
