package spare

import (
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunsEveryFunction: functions handed over at once all run, each
// once, on as many goroutines as were needed; every goroutine ends once
// no work comes for its idle time.
func TestRunsEveryFunction(t *testing.T) {
	t.Parallel()
	g := New(time.Millisecond)
	const n = 200
	var (
		mu   sync.Mutex
		ran  = map[int]int{}
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	wg.Add(n)
	for i := range n {
		g.Go(t.Context(), func() {
			defer wg.Done()
			<-gate
			mu.Lock()
			ran[i]++
			mu.Unlock()
		})
	}
	assert.Equal(t, n, int(g.alive.Load()), "none was free: a goroutine each")
	close(gate)
	wg.Wait()
	for i := range n {
		assert.Equal(t, 1, ran[i], "function %d", i)
	}
	require.Eventually(t, func() bool { return int(g.alive.Load()) == 0 }, 10*time.Second, time.Millisecond, "idle goroutines end")
}

// TestReusesAWaitingGoroutine: a function handed over while a goroutine
// waits between two goes to that goroutine, not to a new one.
func TestReusesAWaitingGoroutine(t *testing.T) {
	t.Parallel()
	g := New(time.Hour)
	ran := make(chan int)
	for i := range 3 {
		g.Go(t.Context(), func() { ran <- i })
		assert.Equal(t, i, <-ran)
		require.Eventually(t, func() bool { return int(g.waiting.Load()) == 1 }, 10*time.Second, time.Millisecond)
		assert.Equal(t, 1, int(g.alive.Load()), "one goroutine ran all %d", i+1)
	}
	// End it for the leak check: with an hour's idle time it would
	// outlive the test. (Go's hand-over orders the write before the
	// goroutine's next read of it.)
	g.idle = 0
	g.Go(t.Context(), func() {})
	require.Eventually(t, func() bool { return int(g.alive.Load()) == 0 }, 10*time.Second, time.Millisecond)
}

// TestRunsWithTheCallersLabels: a function runs with the profiler labels
// of the context it was handed with, and a kept goroutine drops them
// before the next, which has its own (or none).
func TestRunsWithTheCallersLabels(t *testing.T) {
	t.Parallel()
	g := New(time.Hour)
	for _, role := range []string{"api", "coordinator", ""} {
		ctx := t.Context()
		if role != "" {
			ctx = pprof.WithLabels(ctx, pprof.Labels("role", role))
		}
		running, release := make(chan struct{}), make(chan struct{})
		g.Go(ctx, func() {
			close(running)
			<-release
		})
		<-running
		want := ""
		if role != "" {
			want = `# labels: {"role":"` + role + `"}`
		}
		assert.Equal(t, want, runningLabels(t), "labels of the function handed with %q", role)
		close(release)
		require.Eventually(t, func() bool { return int(g.waiting.Load()) == 1 }, 10*time.Second, time.Millisecond)
	}
	assert.Equal(t, 1, int(g.alive.Load()), "one goroutine ran the three")
	g.idle = 0
	g.Go(t.Context(), func() {})
	require.Eventually(t, func() bool { return int(g.alive.Load()) == 0 }, 10*time.Second, time.Millisecond)
}

// runningLabels is the labels line of the goroutine profile's record of
// the one goroutine running this test's function ("" when it has none).
func runningLabels(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 1))
	var found []string
	for _, rec := range strings.Split(b.String(), "\n\n") {
		if !strings.Contains(rec, "TestRunsWithTheCallersLabels.func") || !strings.Contains(rec, "(*Goroutines).run") {
			continue
		}
		labels := ""
		for _, line := range strings.Split(rec, "\n") {
			if strings.HasPrefix(line, "# labels: ") {
				labels = line
			}
		}
		found = append(found, labels)
	}
	require.Len(t, found, 1, "one goroutine runs the function")
	return found[0]
}
