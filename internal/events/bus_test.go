package events

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gatedPublisher records each Publish call's payloads; while gate is set
// every call blocks until the test sends on it.
type gatedPublisher struct {
	mu    sync.Mutex
	calls [][]string // the types of each call's events
	gate  chan struct{}
	err   error
}

func (p *gatedPublisher) Publish(_ context.Context, payloads ...[]byte) error {
	types := make([]string, len(payloads))
	for i, b := range payloads {
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		types[i] = e.Type
	}
	p.mu.Lock()
	p.calls = append(p.calls, types)
	p.mu.Unlock()
	<-p.gate
	return p.err
}

func (p *gatedPublisher) called() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// TestBusPublishesTogether: an Emit with nothing in flight is sent at
// once and alone; Emits made while it is in flight go together in the
// next round trip, each answered. When a round trip fails every Emit in it
// gets the error, and none is sent again alone.
func TestBusPublishesTogether(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]error{"sent": nil, "redis down": errors.New("redis down")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pub := &gatedPublisher{gate: make(chan struct{}), err: fail}
			bus := NewBus(pub, time.Now)
			var sizes []int
			var sizesMu sync.Mutex
			bus.ObserveBatches(func(n int) { sizesMu.Lock(); sizes = append(sizes, n); sizesMu.Unlock() })
			errs := make(chan error, 4)
			go func() { errs <- bus.Emit(t.Context(), Event{Type: "job.started"}) }()
			require.Eventually(t, func() bool { return len(pub.called()) == 1 }, 10*time.Second, time.Millisecond)
			for _, typ := range []string{"job.progress", "job.completed", "job.failed"} {
				go func() { errs <- bus.Emit(t.Context(), Event{Type: typ}) }()
			}
			require.Eventually(t, func() bool { return bus.group.Pending() == 3 }, 10*time.Second, time.Millisecond, "the three wait behind the one in flight")
			pub.gate <- struct{}{}
			require.Eventually(t, func() bool { return len(pub.called()) == 2 }, 10*time.Second, time.Millisecond)
			pub.gate <- struct{}{}
			for range 4 {
				err := <-errs
				if fail == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, fail)
				}
			}
			calls := pub.called()
			require.Len(t, calls, 2, "two round trips, none repeated")
			require.Equal(t, []string{"job.started"}, calls[0])
			require.ElementsMatch(t, []string{"job.progress", "job.completed", "job.failed"}, calls[1])
			sizesMu.Lock()
			defer sizesMu.Unlock()
			require.Equal(t, []int{1, 3}, sizes)
		})
	}
}
