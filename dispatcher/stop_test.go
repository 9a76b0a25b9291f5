package dispatcher

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// TestStopEndsLongPollingClaims: when a coordinator stops (a rolling
// update of the API), its long-polling claims end at once with
// Unavailable, the answer on which a pod claims again, instead of holding
// the stop for their wait (here an hour, so a claim that waited would
// fail the test on its deadline).
func TestStopEndsLongPollingClaims(t *testing.T) {
	e := newEnv(t)
	c, addr, stop, served := e.stoppable()

	w := e.worker(addr, "default")
	claims, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	answered := make(chan error, 2)
	for _, pod := range []string{"pod-a", "pod-b"} {
		go func() {
			j, err := w.claim(claims, pod, 3_600_000)
			if j != nil {
				t.Errorf("%s claimed job %s from an empty queue", pod, j.GetId())
			}
			answered <- err
		}()
	}
	laneKey := e.queue.Keys().Queue("default", "live")
	require.Eventually(t, func() bool { return c.wakeups.waiters(laneKey) == 2 }, 10*time.Second, 5*time.Millisecond,
		"two claims wait on the lane")

	stop()
	for range 2 {
		err := <-answered
		require.Equal(t, codes.Unavailable, status.Code(err), "a claim waiting when the coordinator stopped: %v", err)
	}
	require.NoError(t, <-served)
	require.Zero(t, c.wakeups.waiters(laneKey), "no claim left waiting")
}

// stoppable serves a coordinator whose claims may wait an hour, until
// stop (or the test's end): its address, and Serve's error once stopped.
func (e *env) stoppable() (c *Coordinator, addr string, stop context.CancelFunc, served <-chan error) {
	e.t.Helper()
	c, err := New(Config{Secret: testSecret, MaxWait: time.Hour, PollInterval: time.Hour},
		e.store, e.queue, e.objects, events.NewBus(e.queue, time.Now), telemetry.New(), slog.New(slog.DiscardHandler))
	require.NoError(e.t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	ctx, stop := context.WithCancel(context.Background())
	e.t.Cleanup(stop)
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	return c, ln.Addr().String(), stop, done
}
