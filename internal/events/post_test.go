package events

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postedBus is a bus whose posting window ends when the test says so.
func postedBus(t *testing.T, pub Publisher) (*Bus, chan time.Time) {
	t.Helper()
	bus := NewBus(pub, time.Now)
	window := make(chan time.Time)
	bus.after = func(d time.Duration) <-chan time.Time {
		assert.Equal(t, PostWindow, d)
		return window
	}
	return bus, window
}

// TestBusPostsTogether: Post returns at once; what is posted within the
// window goes in one round trip, in order; what is posted while that round
// trip is in flight goes in the next, without another window; Flush
// returns once all of it is sent. A failed round trip is reported with
// its count and not sent again.
func TestBusPostsTogether(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]error{"sent": nil, "redis down": errors.New("redis down")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pub := &gatedPublisher{gate: make(chan struct{}), err: fail}
			bus, window := postedBus(t, pub)
			var mu sync.Mutex
			var lost []int
			var dispatched int
			bus.ObserveDispatch(func(time.Duration) { mu.Lock(); dispatched++; mu.Unlock() })
			bus.OnPostError(func(n int, err error) {
				assert.ErrorIs(t, err, fail)
				mu.Lock()
				lost = append(lost, n)
				mu.Unlock()
			})
			for _, typ := range []string{"job.started", "job.progress", "job.completed"} {
				require.NoError(t, bus.Post(Event{Type: typ}))
			}
			assert.Empty(t, pub.called(), "nothing is sent before the window ends")
			window <- time.Now()
			require.Eventually(t, func() bool { return len(pub.called()) == 1 }, 10*time.Second, time.Millisecond)
			for _, typ := range []string{"job.failed", "job.cancelled"} {
				require.NoError(t, bus.Post(Event{Type: typ}), "posting does not wait for the round trip in flight")
			}
			flushed := make(chan error, 1)
			go func() { flushed <- bus.Flush(t.Context()) }()
			pub.gate <- struct{}{}
			pub.gate <- struct{}{} // the second round trip starts without a window
			require.NoError(t, <-flushed)
			assert.Equal(t, [][]string{{"job.started", "job.progress", "job.completed"}, {"job.failed", "job.cancelled"}}, pub.called(),
				"two round trips in the order posted, none repeated")
			mu.Lock()
			if fail != nil {
				assert.Equal(t, []int{3, 2}, lost, "each failed round trip reported once Flush returns")
				assert.Zero(t, dispatched)
			} else {
				assert.Empty(t, lost)
				assert.Equal(t, 5, dispatched, "every event answered once Flush returns")
			}
			mu.Unlock()

			// The next post waits for a window of its own.
			require.NoError(t, bus.Post(Event{Type: "job.queued"}))
			window <- time.Now()
			pub.gate <- struct{}{}
			require.NoError(t, bus.Flush(t.Context()))
			assert.Len(t, pub.called(), 3)
		})
	}
}

// TestPostSenderLingers: once everything posted is sent, the sender
// waits for more: a post then wakes it (the same sender, its linger not
// over, sends it a window later), and when its linger passes with no
// post it ends; the next post starts another, which sends after a window
// of its own.
func TestPostSenderLingers(t *testing.T) {
	t.Parallel()
	pub := &gatedPublisher{gate: make(chan struct{})}
	bus, window := postedBus(t, pub)
	linger := make(chan time.Time)
	lingers := make(chan struct{}, 10)
	bus.linger = func() <-chan time.Time { lingers <- struct{}{}; return linger }
	senderUp := func() bool { bus.postMu.Lock(); defer bus.postMu.Unlock(); return bus.senderUp }
	sent := func(typ string) {
		t.Helper()
		require.NoError(t, bus.Post(Event{Type: typ}))
		window <- time.Now()
		pub.gate <- struct{}{}
		require.NoError(t, bus.Flush(t.Context()))
		<-lingers // the sender lingers again
		require.True(t, senderUp())
	}
	sent("job.started")
	sent("job.progress") // woke the lingering sender: its linger never passed
	linger <- time.Now()
	require.Eventually(t, func() bool { return !senderUp() }, 10*time.Second, time.Millisecond, "the sender ends when its linger passes")
	sent("job.completed") // a new sender, a window of its own
	assert.Equal(t, [][]string{{"job.started"}, {"job.progress"}, {"job.completed"}}, pub.called())
	linger <- time.Now()
	require.Eventually(t, func() bool { return !senderUp() }, 10*time.Second, time.Millisecond)
}

// TestPostRefusesPastTheBacklog: while events cannot be sent (here the
// window has not ended) at most MaxPosted wait; the next Post is refused at
// once and Flush gives up when its context ends.
func TestPostRefusesPastTheBacklog(t *testing.T) {
	t.Parallel()
	pub := &gatedPublisher{gate: make(chan struct{})}
	bus, window := postedBus(t, pub)
	for range MaxPosted {
		require.NoError(t, bus.Post(Event{Type: "job.progress"}))
	}
	err := bus.Post(Event{Type: "job.completed"})
	require.ErrorIs(t, err, ErrBacklog)
	assert.Contains(t, err.Error(), "job.completed")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, bus.Flush(ctx), context.DeadlineExceeded)

	window <- time.Now()
	for range MaxPosted / maxPublishBatch {
		pub.gate <- struct{}{}
	}
	require.NoError(t, bus.Flush(t.Context()))
	assert.Len(t, pub.called(), MaxPosted/maxPublishBatch, "sent in full batches once Redis answers")
	require.NoError(t, bus.Post(Event{Type: "job.completed"}), "room again")
	window <- time.Now()
	pub.gate <- struct{}{}
	require.NoError(t, bus.Flush(t.Context()))
}

// TestFlushWithNothingPosted returns at once.
func TestFlushWithNothingPosted(t *testing.T) {
	t.Parallel()
	bus, _ := postedBus(t, &gatedPublisher{gate: make(chan struct{})})
	require.NoError(t, bus.Flush(t.Context()))
}

// TestPostKeepsEachPostersOrder: events posted from several goroutines at
// once all go out, each goroutine's in the order it posted them.
func TestPostKeepsEachPostersOrder(t *testing.T) {
	t.Parallel()
	pub := &recordingPublisher{}
	bus := NewBus(pub, time.Now)
	const posters, each = 4, 500
	var wg sync.WaitGroup
	for p := range posters {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, bus.Post(Event{Type: "job.progress", PoolID: strconv.Itoa(p), Data: map[string]any{"i": i}}))
			}
		})
	}
	wg.Wait()
	require.NoError(t, bus.Flush(t.Context()))
	next := make([]int, posters)
	for _, e := range pub.events(t) {
		p, err := strconv.Atoi(e.PoolID)
		require.NoError(t, err)
		require.InDelta(t, next[p], e.Data["i"], 0, "poster %d's events in order", p)
		next[p]++
	}
	assert.Equal(t, []int{each, each, each, each}, next, "every event sent")
}

// TestPostDropsStaleEvents: an event posted more than MaxPostAge before
// its round trip is reported, not sent.
func TestPostDropsStaleEvents(t *testing.T) {
	t.Parallel()
	pub := &recordingPublisher{}
	bus, window := postedBus(t, pub)
	lost := make(chan error, 1)
	bus.OnPostError(func(n int, err error) {
		assert.Equal(t, 1, n)
		lost <- err
	})
	require.NoError(t, bus.Post(Event{Type: "job.started"}))
	bus.postMu.Lock()
	bus.posts[0].at = bus.posts[0].at.Add(-MaxPostAge - time.Second)
	bus.postMu.Unlock()
	require.NoError(t, bus.Post(Event{Type: "job.completed"}))
	window <- time.Now()
	require.NoError(t, bus.Flush(t.Context()))
	require.ErrorIs(t, <-lost, errStale)
	events := pub.events(t)
	require.Len(t, events, 1)
	assert.Equal(t, "job.completed", events[0].Type)
}

// recordingPublisher keeps every payload it is given.
type recordingPublisher struct {
	mu       sync.Mutex
	payloads [][]byte
}

func (p *recordingPublisher) Publish(_ context.Context, payloads ...[]byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.payloads = append(p.payloads, payloads...)
	return nil
}

func (p *recordingPublisher) events(t *testing.T) []Event {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Event, len(p.payloads))
	for i, b := range p.payloads {
		require.NoError(t, json.Unmarshal(b, &out[i]))
	}
	return out
}
