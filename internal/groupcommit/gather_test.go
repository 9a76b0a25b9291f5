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

// fakeTime is a Group's clock in the gather tests: now reads t, and each
// wait is reported on waited and ends when the test sends on fire.
type fakeTime struct {
	mu     sync.Mutex
	t      time.Time
	waited chan time.Duration
	fire   chan time.Time
}

func newFakeTime() *fakeTime {
	return &fakeTime{t: time.Unix(1_000_000, 0), waited: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) set(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = time.Unix(1_000_000, 0).Add(d)
}

// fireAt moves the clock to d past its start and fires the timer the
// batch waits on.
func (f *fakeTime) fireAt(d time.Duration) {
	f.set(d)
	f.fire <- time.Time{}
}

func (f *fakeTime) after(d time.Duration) <-chan time.Time {
	f.waited <- d
	return f.fire
}

// nextWait is the next wait the group starts.
func (f *fakeTime) nextWait(t *testing.T) time.Duration {
	t.Helper()
	return within(t, f.waited, "the batch never waited")
}

// within is the next value on ch, which must come within 10 s (else the
// test fails with why).
func within[T any](t *testing.T, ch <-chan T, why string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal(why)
		var zero T
		return zero
	}
}

// gathering is a group of batches of up to maxBatch that gathers for
// window, on a fake clock, with calls arriving a second apart so far.
func gathering(r *recorder, maxBatch int, window time.Duration, worth func() bool) (*Group[int, int], *fakeTime) {
	return calledEverySecond(New("test", slog.New(slog.DiscardHandler), r.run, nil, maxBatch, 1, time.Minute, nil).Gather(window, worth))
}

// calledEverySecond puts g on a fake clock, with calls arriving a second
// apart so far.
func calledEverySecond(g *Group[int, int]) (*Group[int, int], *fakeTime) {
	ft := newFakeTime()
	g.now, g.after = ft.now, ft.after
	g.avgGap = time.Second
	return g, ft
}

// TestGathersWhileCallsCome: with calls a second apart and a 10 s window,
// a batch waits until none has come for four seconds; a call meanwhile
// moves that moment, and the batch goes with both. With a second place
// and a spill delay shorter than the wait, the same: the call waits for
// the gathering batch, and no place is opened for it (which would gather
// the same calls again, on timers of its own, and split them).
func TestGathersWhileCallsCome(t *testing.T) {
	t.Parallel()
	for name, group := range map[string]func(*recorder) (*Group[int, int], *fakeTime){
		"one place":                        func(r *recorder) (*Group[int, int], *fakeTime) { return gathering(r, 64, 10*time.Second, nil) },
		"two places, a spill delay of 1 s": func(r *recorder) (*Group[int, int], *fakeTime) { return gatheringSpill(r, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{started: make(chan int, 16)}
			g, ft := group(r)
			var wg sync.WaitGroup
			doAsync(t, t.Context(), g, &wg, 1)
			assert.Equal(t, 4*time.Second, ft.nextWait(t), "quiet for four gaps")
			ft.set(time.Second)
			doAsync(t, t.Context(), g, &wg, 2)
			waitPending(t, g, 2)
			select {
			case d := <-ft.waited:
				t.Fatalf("a wait of %v began for a call the gathering batch takes", d)
			default:
			}
			ft.fireAt(4 * time.Second)
			assert.Equal(t, time.Second, ft.nextWait(t), "four gaps after the second call: still waiting")
			ft.fireAt(5 * time.Second)
			require.Equal(t, 2, within(t, r.started, "the gathered batch never went"), "the two go together")
			wg.Wait()
			assert.Equal(t, [][]int{{1, 2}}, r.batches)
		})
	}
}

// TestGatherEndsAtItsWindow: however steadily calls come, the oldest
// waits at most the window.
func TestGatherEndsAtItsWindow(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16)}
	g, ft := gathering(r, 64, 6*time.Second, nil)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	assert.Equal(t, 4*time.Second, ft.nextWait(t))
	ft.set(3 * time.Second)
	doAsync(t, t.Context(), g, &wg, 2)
	waitPending(t, g, 2)
	ft.fireAt(4 * time.Second)
	assert.Equal(t, 2*time.Second, ft.nextWait(t), "until the window's end, not four gaps after the second call")
	ft.fireAt(6 * time.Second)
	require.Equal(t, 2, <-r.started)
	wg.Wait()
}

// TestFullBatchStopsGathering: a batch that fills goes at once, without
// its timer.
func TestFullBatchStopsGathering(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16)}
	g, ft := gathering(r, 3, time.Hour, nil)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	ft.nextWait(t)
	doAsync(t, t.Context(), g, &wg, 2)
	doAsync(t, t.Context(), g, &wg, 3)
	require.Equal(t, 3, startedWithin(t, r), "full: the three go together")
	wg.Wait()
}

// startedWithin is the size of the next batch to start, which must start
// without the test firing a timer.
func startedWithin(t *testing.T, r *recorder) int {
	t.Helper()
	return within(t, r.started, "the batch did not go")
}

// TestRecheckEndsTheGather: when worth turns to no (the last waiting claim
// got work), Recheck sends the gathering batch at once.
func TestRecheckEndsTheGather(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16)}
	var worth atomic.Bool
	worth.Store(true)
	g, ft := gathering(r, 64, time.Hour, worth.Load)
	var wg sync.WaitGroup
	doAsync(t, t.Context(), g, &wg, 1)
	ft.nextWait(t)
	doAsync(t, t.Context(), g, &wg, 2)
	waitPending(t, g, 2)
	g.Recheck()
	assert.Equal(t, 3*time.Second, ft.nextWait(t), "still worth it: the batch waits again, four gaps (now 0.75 s on average) after the second call")
	worth.Store(false)
	g.Recheck()
	require.Equal(t, 2, startedWithin(t, r), "not worth it any more: the two go")
	wg.Wait()
}

// TestNoGatherWhenNotWorthIt: calls further apart than a quarter of the
// window (light load), or a worth that says no (pods wait on their
// completions), and a call goes at once.
func TestNoGatherWhenNotWorthIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		avgGap time.Duration
		worth  func() bool
	}{
		{"calls far apart", 3 * time.Second, nil},
		{"no history yet", 0, nil},
		{"not worth it", time.Second, func() bool { return false }},
	} {
		r := &recorder{started: make(chan int, 16)}
		g, _ := gathering(r, 64, 10*time.Second, tc.worth)
		if tc.avgGap > 0 {
			g.avgGap = tc.avgGap
		} else {
			g.avgGap = g.gather // as Gather leaves it
		}
		g.after = neverWaits(t, tc.name+": the call waited")
		v, err := g.Do(t.Context(), 21)
		require.NoError(t, err, tc.name)
		assert.Equal(t, 42, v, tc.name)
	}
}

// TestGatherLearnsTheGap: the average gap follows the calls' arrivals,
// so a burst turns gathering on and a long silence turns it off again.
func TestGatherLearnsTheGap(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 64)}
	ft := newFakeTime()
	g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 1, time.Minute, nil).Gather(10*time.Second, func() bool { return false })
	g.now, g.after = ft.now, ft.after
	for i := range 20 {
		ft.set(time.Duration(i) * 100 * time.Millisecond)
		_, err := g.Do(t.Context(), i)
		require.NoError(t, err)
	}
	g.mu.Lock()
	assert.Less(t, g.avgGap*gatherCalls, g.gather, "calls 100 ms apart: worth gathering for 10 s")
	g.mu.Unlock()
	ft.set(time.Hour)
	_, err := g.Do(t.Context(), 99)
	require.NoError(t, err)
	g.mu.Lock()
	assert.Greater(t, g.avgGap*gatherCalls, g.gather, "after an hour's silence: not")
	g.mu.Unlock()
}
