package spare

import (
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
		g.Go(func() {
			defer wg.Done()
			<-gate
			mu.Lock()
			ran[i]++
			mu.Unlock()
		})
	}
	assert.Equal(t, n, g.Alive(), "none was free: a goroutine each")
	close(gate)
	wg.Wait()
	for i := range n {
		assert.Equal(t, 1, ran[i], "function %d", i)
	}
	require.Eventually(t, func() bool { return g.Alive() == 0 }, 10*time.Second, time.Millisecond, "idle goroutines end")
}

// TestReusesAWaitingGoroutine: a function handed over while a goroutine
// waits between two goes to that goroutine, not to a new one.
func TestReusesAWaitingGoroutine(t *testing.T) {
	t.Parallel()
	g := New(time.Hour)
	ran := make(chan int)
	for i := range 3 {
		g.Go(func() { ran <- i })
		assert.Equal(t, i, <-ran)
		require.Eventually(t, func() bool { return g.Waiting() == 1 }, 10*time.Second, time.Millisecond)
		assert.Equal(t, 1, g.Alive(), "one goroutine ran all %d", i+1)
	}
	// End it for the leak check: with an hour's idle time it would
	// outlive the test. (Go's hand-over orders the write before the
	// goroutine's next read of it.)
	g.idle = 0
	g.Go(func() {})
	require.Eventually(t, func() bool { return g.Alive() == 0 }, 10*time.Second, time.Millisecond)
}
