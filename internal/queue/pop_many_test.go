package queue_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestPopMany: pops of several lanes in one round trip, each answered as a
// lone Pop would be: two pops of one lane take two ids, in order; a paused
// pool and an empty lane say so. After the server lost its scripts (a
// restart, here SCRIPT FLUSH) the pops are still made, each once.
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

	lanes := []queue.Lane{{Pool: "p", Lane: "live"}, {Pool: "gated", Lane: "live"}, {Pool: "p", Lane: "live"}, {Pool: "p", Lane: "backfill"}}
	trips := &commandCounter{}
	rdb.AddHook(trips)
	got := q.PopMany(ctx, lanes)
	require.EqualValues(t, 1, trips.n.Load(), "one round trip")
	require.Len(t, got, 4)
	for _, p := range got {
		require.NoError(t, p.Err)
	}
	assert.Equal(t, queue.Popped{Result: queue.PopJob, ID: "a", Org: tenant.Org}, got[0])
	assert.Equal(t, queue.PopPaused, got[1].Result)
	assert.Equal(t, queue.Popped{Result: queue.PopJob, ID: "b", Org: tenant.Org}, got[2], "the second pop of a lane takes the next id")
	assert.Equal(t, queue.PopEmpty, got[3].Result)

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	got = q.PopMany(ctx, []queue.Lane{{Pool: "p", Lane: "live"}, {Pool: "gated", Lane: "live"}})
	require.NoError(t, got[0].Err)
	require.NoError(t, got[1].Err)
	assert.Equal(t, "c", got[0].ID, "popped once the script was loaded again")
	assert.Equal(t, queue.PopPaused, got[1].Result)
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	assert.Zero(t, n, "each pop made once: nothing popped twice or left behind")
	paused, err := q.Len(ctx, "gated", "live")
	require.NoError(t, err)
	assert.EqualValues(t, 1, paused, "a paused pool keeps its id")
}
