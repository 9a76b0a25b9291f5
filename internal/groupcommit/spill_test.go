package groupcommit

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spilling is a group of two places with a spill delay of 10 s on a fake
// clock; its batches wait on r's gate.
func spilling(r *recorder) (*Group[int, int], *fakeTime) {
	ft := newFakeTime()
	g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 2, time.Minute, nil).Spill(10 * time.Second)
	g.now, g.after = ft.now, ft.after
	return g, ft
}

// noBatchStarted fails the test if a batch has started that the test has
// not read from r.started yet. A batch beyond the first can only start
// when the test fires the fake clock, so nothing is still on its way.
func noBatchStarted(t *testing.T, r *recorder, why string) {
	t.Helper()
	select {
	case n := <-r.started:
		t.Fatalf("%s: a batch of %d started", why, n)
	default:
	}
}

// TestSpillRunsOneBatchWhileQuick: with two places and a spill delay, the
// calls that come while a batch runs wait for it, not for a place of
// their own, and then go together, as with one place.
func TestSpillRunsOneBatchWhileQuick(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g, ft := spilling(r)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	require.Equal(t, 1, within(t, r.started, "the first call never went"), "the first call goes alone, at once")
	doAsync(t, t.Context(), g, &wg, 2)
	assert.Equal(t, 10*time.Second, ft.nextWait(t), "the second place waits out the spill delay")
	doAsync(t, t.Context(), g, &wg, 3)
	waitPending(t, g, 2)
	noBatchStarted(t, r, "a place opened before the delay")

	r.gate <- struct{}{}
	require.Equal(t, 2, within(t, r.started, "the pending calls never went"), "the calls that waited go together once the first batch ends")
	r.gate <- struct{}{}
	wg.Wait()
	ft.fireAt(10 * time.Second) // nothing pending: the spill ends
	assert.Equal(t, [][]int{{1}, {2, 3}}, r.batches)
}

// TestSpillOpensAPlaceForCallsThatWaited: a batch held up (a statement
// waiting on a row lock) delays the calls behind it by the spill delay
// only; then they go in the second place while it still runs.
func TestSpillOpensAPlaceForCallsThatWaited(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g, ft := spilling(r)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	require.Equal(t, 1, within(t, r.started, "the first call never went"))
	doAsync(t, t.Context(), g, &wg, 2)
	assert.Equal(t, 10*time.Second, ft.nextWait(t))
	ft.fireAt(10 * time.Second)
	require.Equal(t, 1, within(t, r.started, "the waiting call never got the second place"), "the second place opens while the first batch still runs")
	r.gate <- struct{}{}
	r.gate <- struct{}{}
	wg.Wait()
	assert.Equal(t, [][]int{{1}, {2}}, r.batches)
}

// TestSpillWaitsForTheOldestCall: when the calls the delay was counted for
// were taken by the running batch meanwhile, the place opens once the
// oldest call still pending has waited the delay, not before.
func TestSpillWaitsForTheOldestCall(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g, ft := spilling(r)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	require.Equal(t, 1, within(t, r.started, "the first call never went"))
	doAsync(t, t.Context(), g, &wg, 2)
	assert.Equal(t, 10*time.Second, ft.nextWait(t))
	r.gate <- struct{}{} // the first batch ends and its place takes call 2
	require.Equal(t, 1, within(t, r.started, "call 2 never went"))

	ft.set(6 * time.Second)
	doAsync(t, t.Context(), g, &wg, 3)
	waitPending(t, g, 1)
	ft.fireAt(10 * time.Second)
	assert.Equal(t, 6*time.Second, ft.nextWait(t), "call 3 came at 6 s: its turn is at 16 s")
	noBatchStarted(t, r, "a place opened for a call that had waited 4 s")
	ft.fireAt(16 * time.Second)
	require.Equal(t, 1, within(t, r.started, "call 3 never got the second place"), "call 3 goes beside call 2's batch")
	r.gate <- struct{}{}
	r.gate <- struct{}{}
	wg.Wait()
	assert.Equal(t, [][]int{{1}, {2}, {3}}, r.batches)
}

// gatheringSpill is a group of two places that gathers for up to 10 s
// (worth, when not nil, says whether to) and spills after 1 s, on a fake
// clock, with calls arriving a second apart so far.
func gatheringSpill(r *recorder, worth func() bool) (*Group[int, int], *fakeTime) {
	return calledEverySecond(New("test", slog.New(slog.DiscardHandler), r.run, keyOf, 64, 2, time.Minute, nil).
		Gather(10*time.Second, worth).Spill(time.Second))
}

// TestSpillForWhatAGatheredBatchLeft: a call the gathered batch could not
// take (a key in common with one it took) gets a place of its own once it
// has waited the spill delay, beside the batch, not after it.
func TestSpillForWhatAGatheredBatchLeft(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	var worth atomic.Bool
	worth.Store(true)
	g, ft := gatheringSpill(r, worth.Load)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	assert.Equal(t, 4*time.Second, ft.nextWait(t))
	ft.set(time.Second)
	doAsync(t, t.Context(), g, &wg, 11) // clashes with 1
	waitPending(t, g, 2)
	worth.Store(false)
	ft.fireAt(2 * time.Second) // the gather ends: 1 goes, 11 stays
	require.Equal(t, 1, within(t, r.started, "the gathered batch never went"))
	assert.Equal(t, time.Duration(0), ft.nextWait(t), "11 came at 1 s: it has waited the delay at 2 s")
	ft.fireAt(2 * time.Second)
	require.Equal(t, 1, within(t, r.started, "11 never got the second place"), "11 goes beside 1's batch")
	r.gate <- struct{}{}
	r.gate <- struct{}{}
	wg.Wait()
	assert.ElementsMatch(t, [][]int{{1}, {11}}, r.batches)
}
