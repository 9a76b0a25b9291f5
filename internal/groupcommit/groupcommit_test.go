package groupcommit

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a run function for Group tests: it records each batch
// and answers every request with its own value doubled; while gate is set
// it blocks each batch until the test sends on it.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	started chan int // the size of each batch as it starts
	gate    chan struct{}
	err     error
}

func (r *recorder) run(_ context.Context, reqs []int) ([]int, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), reqs...))
	r.mu.Unlock()
	r.started <- len(reqs)
	if r.gate != nil {
		<-r.gate
	}
	if r.err != nil {
		return nil, r.err
	}
	out := make([]int, len(reqs))
	for i, v := range reqs {
		out[i] = 2 * v
	}
	return out, nil
}

// doAsync runs g.Do(ctx, v) on a goroutine counted by wg and checks that
// it answers recorder's 2·v.
func doAsync(t *testing.T, ctx context.Context, g *Group[int, int], wg *sync.WaitGroup, v int) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		got, err := g.Do(ctx, v)
		assert.NoError(t, err)
		assert.Equal(t, 2*v, got)
	}()
}

// keyOf makes requests with the same value mod 10 clash.
func keyOf(v int) []string { return []string{strconv.Itoa(v % 10)} }

// waitPending waits until n calls are queued behind the running batches.
func waitPending[Req, Res any](t *testing.T, g *Group[Req, Res], n int) {
	t.Helper()
	require.Eventually(t, func() bool { return g.Pending() == n }, 10*time.Second, time.Millisecond)
}

// TestCoalesces: a call that finds no batch running goes alone
// at once; calls that arrive while one runs go together in the next, each
// getting its own answer.
func TestCoalesces(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g := New("test", slog.New(slog.DiscardHandler), r.run, keyOf, 64, 1, time.Minute, nil)
	ctx := t.Context()

	results := make([]int, 6)
	var wg sync.WaitGroup
	call := func(i int) {
		defer wg.Done()
		v, err := g.Do(ctx, i+1)
		assert.NoError(t, err)
		results[i] = v
	}
	wg.Add(1)
	go call(0)
	require.Equal(t, 1, <-r.started, "the first call goes alone, at once")
	for i := 1; i < 6; i++ {
		wg.Add(1)
		go call(i)
	}
	waitPending(t, g, 5)
	r.gate <- struct{}{}
	require.Equal(t, 5, <-r.started, "the calls that came meanwhile go together")
	r.gate <- struct{}{}
	wg.Wait()
	assert.Equal(t, []int{2, 4, 6, 8, 10, 12}, results, "every caller its own answer")
	assert.Len(t, r.batches, 2)
}

// TestKeepsClashingCallsApart: calls sharing a key never share
// a batch, and a batch holds at most maxBatch calls.
func TestKeepsClashingCallsApart(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g := New("test", slog.New(slog.DiscardHandler), r.run, keyOf, 3, 1, time.Minute, nil)
	ctx := t.Context()
	var wg sync.WaitGroup
	doAsync(t, ctx, g, &wg, 100)
	within(t, r.started, "the blocker never ran") // the rest queue behind it
	// One at a time, so that they queue in this order: the batches below
	// depend on it (2, 3 and 4 first would leave 1 and 11 a batch each).
	for i, v := range []int{1, 11, 2, 3, 4} { // 1 and 11 clash
		doAsync(t, ctx, g, &wg, v)
		waitPending(t, g, i+1)
	}
	r.gate <- struct{}{} // the blocker ends
	require.Equal(t, 3, within(t, r.started, "the second batch never went"), "1, 2 and 3: full, 11 waits for 1")
	r.gate <- struct{}{}
	require.Equal(t, 2, within(t, r.started, "the third batch never went"), "11 and 4")
	r.gate <- struct{}{}
	wg.Wait()
	require.Len(t, r.batches, 3)
	for _, b := range r.batches[1:] {
		assert.LessOrEqual(t, len(b), 3, "at most maxBatch")
		seen := map[int]bool{}
		for _, v := range b {
			assert.False(t, seen[v%10], "clashing calls %v in one batch", b)
			seen[v%10] = true
		}
	}
	assert.ElementsMatch(t, []int{1, 11, 2, 3, 4}, append(append([]int(nil), r.batches[1]...), r.batches[2]...))
}

// TestCallerLeaves: a caller whose context ends before its
// batch starts is dropped from it (never run) and gets the context's
// error; the others are unaffected.
func TestCallerLeaves(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16), gate: make(chan struct{})}
	g := New("test", slog.New(slog.DiscardHandler), r.run, keyOf, 64, 1, time.Minute, nil)
	go func() { _, _ = g.Do(t.Context(), 1) }()
	<-r.started
	leaving, leave := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() {
		_, err := g.Do(leaving, 2)
		left <- err
	}()
	stays := make(chan int, 1)
	go func() {
		v, err := g.Do(t.Context(), 3)
		assert.NoError(t, err)
		stays <- v
	}()
	waitPending(t, g, 2)
	leave()
	require.ErrorIs(t, <-left, context.Canceled)
	r.gate <- struct{}{}
	require.Equal(t, 1, <-r.started)
	r.gate <- struct{}{}
	assert.Equal(t, 6, <-stays)
	assert.Equal(t, [][]int{{1}, {3}}, r.batches, "the call that left never ran")
}

// TestBatchError: a statement that fails as a whole fails no
// call for another's sake: each call of the batch runs again alone, and
// only a call that fails alone gets an error.
func TestBatchError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var (
		mu   sync.Mutex
		runs [][]int
	)
	gate := make(chan struct{})
	run := func(_ context.Context, reqs []int) ([]int, error) {
		mu.Lock()
		runs = append(runs, append([]int(nil), reqs...))
		mu.Unlock()
		if reqs[0] == 0 {
			<-gate // the blocker: the rest queue behind it
		}
		if len(reqs) > 1 || reqs[0] == 13 {
			return nil, boom
		}
		return []int{2 * reqs[0]}, nil
	}
	g := New("test", slog.New(slog.DiscardHandler), run, keyOf, 64, 1, time.Minute, nil)
	blocker := make(chan struct{})
	go func() {
		defer close(blocker)
		_, _ = g.Do(t.Context(), 0)
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 1 }, 10*time.Second, time.Millisecond)
	var wg sync.WaitGroup
	got := make(map[int]error)
	var gotMu sync.Mutex
	for _, v := range []int{11, 12, 13} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := g.Do(t.Context(), v)
			gotMu.Lock()
			got[v] = err
			gotMu.Unlock()
			if err == nil {
				assert.Equal(t, 2*v, res)
			}
		}()
	}
	waitPending(t, g, 3)
	close(gate)
	wg.Wait()
	<-blocker
	assert.NoError(t, got[11])
	assert.NoError(t, got[12])
	assert.ErrorIs(t, got[13], boom, "the call that fails alone")
	require.Len(t, runs, 5, "the blocker, the batch of three, then each alone: %v", runs)
	assert.ElementsMatch(t, []int{11, 12, 13}, runs[1])
}

// TestPanicIsTheBatchError: a run that panics (on the group's goroutine,
// where no handler recovers) fails its calls, each with an error that
// says so, and the group goes on serving.
func TestPanicIsTheBatchError(t *testing.T) {
	t.Parallel()
	run := func(_ context.Context, reqs []int) ([]int, error) {
		if reqs[0] < 0 {
			panic("negative")
		}
		return reqs, nil
	}
	g := New("test", slog.New(slog.DiscardHandler), run, nil, 64, 1, time.Minute, nil)
	_, err := g.Do(t.Context(), -1)
	require.ErrorContains(t, err, "test batch: panic: negative")
	v, err := g.Do(t.Context(), 7)
	require.NoError(t, err)
	assert.Equal(t, 7, v)
}

// lingering reports whether a batch of g waits for company.
func lingering[Req, Res any](g *Group[Req, Res]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.joined != nil
}

// TestLingersForCompany: after batches of four, a call that finds
// nothing running waits for three more, and the four go together.
func TestLingersForCompany(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan int, 16)}
	g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 1, time.Minute, nil).Linger(time.Hour)
	g.avgSize, g.avgRun = 4, 4*time.Hour // recent batches: four calls, long statements
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := 1; i <= 4; i++ {
		doAsync(t, ctx, g, &wg, i)
		if i == 1 {
			require.Eventually(t, func() bool { return lingering(g) }, 10*time.Second, time.Millisecond, "the first call waits")
		}
	}
	require.Equal(t, 4, <-r.started, "the four go together")
	wg.Wait()
	assert.Len(t, r.batches, 1)
}

// TestLingerEndsAtItsWindow: the wait lasts half the recent run time, at
// most the linger; when it ends, what is pending goes.
func TestLingerEndsAtItsWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		linger, avgRun, want time.Duration
	}{
		{linger: 3 * time.Second, avgRun: 10 * time.Second, want: 3 * time.Second},
		{linger: 3 * time.Second, avgRun: 2 * time.Second, want: time.Second},
	} {
		r := &recorder{started: make(chan int, 16)}
		g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 1, time.Minute, nil).Linger(tc.linger)
		g.avgSize, g.avgRun = 8, tc.avgRun
		waited := make(chan time.Duration, 1)
		fire := make(chan time.Time)
		g.after = func(d time.Duration) <-chan time.Time { waited <- d; return fire }
		done := make(chan int, 1)
		go func() {
			v, err := g.Do(t.Context(), 5)
			assert.NoError(t, err)
			done <- v
		}()
		select {
		case d := <-waited:
			assert.Equal(t, tc.want, d)
		case <-time.After(10 * time.Second):
			t.Fatal("the call never lingered")
		}
		fire <- time.Now()
		require.Equal(t, 1, <-r.started, "alone once the window is over")
		assert.Equal(t, 10, <-done)
	}
}

// neverWaits is a Group's timer for a test in which no batch may wait:
// a wait fails the test with why, and ends at once.
func neverWaits(t *testing.T, why string) func(time.Duration) <-chan time.Time {
	return func(time.Duration) <-chan time.Time {
		t.Error(why)
		return time.After(0)
	}
}

// TestNoLingerUnderLightLoad: when recent batches held one call (light
// load), or no batch has run yet, a call goes at once: nothing waits.
func TestNoLingerUnderLightLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		avgSize float64
		avgRun  time.Duration
	}{
		{"one call a batch", 1.2, time.Hour},
		{"no statement yet", 4, 0},
	} {
		r := &recorder{started: make(chan int, 16)}
		g := New("test", slog.New(slog.DiscardHandler), r.run, nil, 64, 1, time.Minute, nil).Linger(time.Hour)
		g.avgSize, g.avgRun = tc.avgSize, tc.avgRun
		g.after = neverWaits(t, tc.name+": the call lingered")
		v, err := g.Do(t.Context(), 21)
		require.NoError(t, err, tc.name)
		assert.Equal(t, 42, v, tc.name)
	}
}
