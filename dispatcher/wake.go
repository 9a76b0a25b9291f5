package dispatcher

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/queue"
)

// wakeups hands pushes to the long-polling claims of this coordinator: a
// push of N ids on a lane (announced on the wake channel by the push
// script, queue.Keys.Wake) wakes the N claims of that lane that have
// waited longest, which pop at once instead of at their next poll. A
// waiter woken for an id another claim (here or on another replica) took
// first finds nothing and waits again; a wake that finds no waiter is
// dropped. Polling stays as the fallback for wakes lost while the
// subscription reconnects.
type wakeups struct {
	mu      sync.Mutex
	waiting map[string][]chan struct{} // lane key → waiters, oldest first
}

func newWakeups() *wakeups { return &wakeups{waiting: map[string][]chan struct{}{}} }

// wait registers a waiter on the lane whose list is laneKey; its channel
// receives one value when a push wakes it. done unregisters it, and hands
// a wake it received but will not use to the next waiter.
func (w *wakeups) wait(laneKey string) (ch <-chan struct{}, done func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	w.waiting[laneKey] = append(w.waiting[laneKey], c)
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		q := w.waiting[laneKey]
		// In place: the list is only ever read and changed under mu.
		if i := slices.Index(q, c); i >= 0 {
			q = slices.Delete(q, i, i+1)
		}
		if len(q) == 0 {
			delete(w.waiting, laneKey)
		} else {
			w.waiting[laneKey] = q
		}
		w.mu.Unlock()
		select {
		case <-c: // woken, but leaving: pass it on
			w.wake(laneKey, 1)
		default:
		}
	}
}

// wake signals the n oldest waiters of the lane and unregisters them.
func (w *wakeups) wake(laneKey string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.waiting[laneKey]
	k := min(n, len(q))
	for _, c := range q[:k] {
		c <- struct{}{} // buffered, and each waiter is woken once
	}
	clear(q[:k]) // the list keeps q[k:]; the woken are not kept alive by it
	if k == len(q) {
		delete(w.waiting, laneKey)
	} else {
		w.waiting[laneKey] = q[k:]
	}
}

// waiters is the number of claims waiting on the lane.
func (w *wakeups) waiters(laneKey string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting[laneKey])
}

// RunWakeups subscribes to the queue's wake channel until ctx ends and
// wakes long-polling claims as ids are pushed. Without it, claims find
// pushed ids at their next poll (Config.PollInterval).
func (c *Coordinator) RunWakeups(ctx context.Context) error {
	ps := c.queue.SubscribeWake(ctx)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			n, lane, err := queue.ParseWake(m.Payload)
			if err != nil {
				c.log.WarnContext(ctx, "unreadable wake message dropped; something other than MpegFlow publishes on the channel",
					slog.String("channel", m.Channel), slog.Any("error", err))
				continue
			}
			c.wakeups.wake(lane, n)
		}
	}
}
