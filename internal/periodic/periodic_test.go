package periodic_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/internal/periodic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink the loop's goroutine and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs one Loop on a fake clock; every round reports on ran and
// answers with the next of results.
type harness struct {
	clk  *testingclock.FakeClock
	kick chan struct{}
	ran  chan struct{}
	log  *syncBuffer
	stop func()
}

func start(t *testing.T, period time.Duration, results ...error) *harness {
	t.Helper()
	h := &harness{
		clk:  testingclock.NewFakeClock(time.Unix(1_800_000_000, 0)),
		kick: make(chan struct{}),
		ran:  make(chan struct{}, 16),
		log:  &syncBuffer{},
	}
	var mu sync.Mutex
	round := periodic.Round{
		Name: "test-service", Period: period, Kick: h.kick,
		Run: func(context.Context) (int, error) {
			mu.Lock()
			var err error
			if len(results) > 0 {
				err, results = results[0], results[1:]
			}
			mu.Unlock()
			h.ran <- struct{}{}
			if err != nil {
				return 0, err
			}
			return 2, nil
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		periodic.Loop(ctx, h.clk, round, slog.New(slog.NewJSONHandler(h.log, nil)), "the test's hint")
	}()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
	// The loop has created its ticker once the fake clock has a waiter.
	require.Eventually(t, func() bool { return h.clk.HasWaiters() }, 5*time.Second, time.Millisecond)
	return h
}

func (h *harness) waitRound(t *testing.T) {
	t.Helper()
	select {
	case <-h.ran:
	case <-time.After(5 * time.Second):
		t.Fatal("no round ran")
	}
}

func (h *harness) noRound(t *testing.T) {
	t.Helper()
	select {
	case <-h.ran:
		t.Fatal("a round ran early")
	default:
	}
}

func TestRunsEveryPeriodNotBefore(t *testing.T) {
	t.Parallel()
	h := start(t, time.Minute)
	h.clk.Step(59 * time.Second)
	h.noRound(t)
	h.clk.Step(time.Second)
	h.waitRound(t)
	h.clk.Step(time.Minute)
	h.waitRound(t)
	require.Contains(t, h.log.String(), `"service":"test-service"`)
	require.Contains(t, h.log.String(), `"changed":2`)
}

func TestKickRunsAtOnce(t *testing.T) {
	t.Parallel()
	h := start(t, time.Hour)
	h.kick <- struct{}{}
	h.waitRound(t)
}

func TestFailedRoundIsLoggedWithHintAndRetried(t *testing.T) {
	t.Parallel()
	h := start(t, time.Second, errors.New("postgres went away"))
	h.clk.Step(time.Second)
	h.waitRound(t)
	require.Eventually(t, func() bool { return bytes.Contains([]byte(h.log.String()), []byte("postgres went away")) }, 5*time.Second, time.Millisecond)
	require.Contains(t, h.log.String(), "check the test's hint")
	require.Contains(t, h.log.String(), `"level":"WARN"`)
	h.clk.Step(time.Second)
	h.waitRound(t) // the next period runs again
}

func TestStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	h := start(t, time.Second)
	h.stop() // returns only once Loop has returned; goleak checks nothing is left
	h.clk.Step(time.Minute)
	h.noRound(t)
}
