package groupcommit

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// observed records what a histogram would be given.
type observed struct {
	mu   sync.Mutex
	vals []float64
}

func (o *observed) Observe(v float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.vals = append(o.vals, v)
}

func (o *observed) sorted() []float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(slices.Values(o.vals))
}

// TestTimedObservesWaitsAndRuns: each call's wait is from its arrival to
// its batch's start, each batch's run from its start to its end, on the
// group's clock.
func TestTimedObservesWaitsAndRuns(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	ft := newFakeTime()
	var waits, runs observed
	g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 1, time.Minute, nil).Timed(&waits, &runs)
	g.now = ft.now
	var wg sync.WaitGroup

	doAsync(t, t.Context(), g, &wg, 1) // at 0 s: goes at once
	require.Equal(t, 1, within(t, r.started, "the first call never went"))
	ft.set(3 * time.Second)
	doAsync(t, t.Context(), g, &wg, 2) // at 3 s: wait for the running batch
	doAsync(t, t.Context(), g, &wg, 3)
	waitPending(t, g, 2)
	ft.set(7 * time.Second)
	r.gate <- struct{}{} // the first batch ends at 7 s; the second starts
	require.Equal(t, 2, within(t, r.started, "the waiting calls never went"))
	ft.set(8 * time.Second)
	r.gate <- struct{}{}
	wg.Wait()

	assert.Equal(t, []float64{0, 4, 4}, waits.sorted(), "call 1 went at once; calls 2 and 3 waited from 3 s to 7 s")
	assert.Equal(t, []float64{1, 7}, runs.sorted(), "the first batch ran 7 s, the second 1 s")
	require.Len(t, r.batches, 2)
	assert.ElementsMatch(t, []int{2, 3}, r.batches[1], "calls 2 and 3 went together")
}
