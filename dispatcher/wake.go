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
//
// A waiter may instead be handed a job (offer): a submission in this
// process gives its job straight to a claim waiting on the job's lane,
// which claims it without a push or a pop (Coordinator.Offer).
type wakeups struct {
	mu      sync.Mutex
	waiting map[string][]chan handed // lane key → waiters, oldest first
	// idle holds the waiters known to have found their lane empty (see
	// join), and idleOn counts them by lane key.
	idle   map[<-chan handed]bool
	idleOn map[string]int
	// unclaimed takes a handed job that its waiter left with, unclaimed,
	// when no other claim waits on its lane: it goes onto its lane's list.
	unclaimed func(handed)
}

// handed is what a waiting claim receives: a wake (the zero value), or a
// job handed to it, of organization org on lane of pool.
type handed struct{ pool, lane, id, org string }

func newWakeups(unclaimed func(handed)) *wakeups {
	return &wakeups{waiting: map[string][]chan handed{}, idle: map[<-chan handed]bool{}, idleOn: map[string]int{}, unclaimed: unclaimed}
}

// join registers a waiter on the lane whose list is laneKey; its channel
// receives one value when a push wakes it or a job is handed to it. done
// unregisters it, and passes on what it received but will not use: a wake
// to the next waiter, a handed job to the next waiter or, when none is
// left, to unclaimed.
//
// arriving says the claim has not popped yet. join answers skip when the claim may wait without a pop: it arrives while
// an idle waiter is registered on the lane, one that popped nothing after
// it registered (setIdle) and has not been woken or handed a job since. A
// push wakes the lane's oldest waiters, and a waiter that leaves with a
// wake passes it on, so every id pushed since that empty pop has a claim
// on its way to pop it: the newcomer, idle from the start, would only
// find the list empty. Should a wake have been lost (the subscription
// reconnecting), the id is found at the waiters' next poll, as it would
// be without this.
func (w *wakeups) join(laneKey string, arriving bool) (ch <-chan handed, done func(), skip bool) {
	c := make(chan handed, 1)
	w.mu.Lock()
	skip = arriving && w.idleOn[laneKey] > 0
	w.waiting[laneKey] = append(w.waiting[laneKey], c)
	if skip {
		w.idle[c] = true
		w.idleOn[laneKey]++
	}
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		w.remove(laneKey, c)
		w.mu.Unlock()
		select {
		case h := <-c: // received, but leaving: pass it on
			switch {
			case h.id == "":
				w.wake(laneKey, 1)
			case !w.offer(laneKey, h, nil):
				w.unclaimed(h)
			}
		default:
		}
	}, skip
}

// setIdle marks waiter ch of the lane idle: its pop, made after it
// registered, found the list empty. A waiter no longer registered (woken,
// handed a job) is left alone.
func (w *wakeups) setIdle(laneKey string, ch <-chan handed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idle[ch] || !slices.ContainsFunc(w.waiting[laneKey], func(c chan handed) bool { return c == ch }) {
		return
	}
	w.idle[ch] = true
	w.idleOn[laneKey]++
}

// forget drops c's idle mark as it leaves the lane's list; the caller
// holds mu.
func (w *wakeups) forget(laneKey string, c chan handed) {
	if !w.idle[c] {
		return
	}
	delete(w.idle, c)
	if w.idleOn[laneKey]--; w.idleOn[laneKey] == 0 {
		delete(w.idleOn, laneKey)
	}
}

// remove unregisters waiter c of the lane; the caller holds mu.
func (w *wakeups) remove(laneKey string, c chan handed) {
	q := w.waiting[laneKey]
	// In place: the list is only ever read and changed under mu.
	if i := slices.Index(q, c); i >= 0 {
		q = slices.Delete(q, i, i+1)
		w.forget(laneKey, c)
	}
	if len(q) == 0 {
		delete(w.waiting, laneKey)
	} else {
		w.waiting[laneKey] = q
	}
}

// wake signals the n oldest waiters of the lane and unregisters them.
func (w *wakeups) wake(laneKey string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.waiting[laneKey]
	k := min(n, len(q))
	for _, c := range q[:k] {
		c <- handed{} // buffered, and each waiter is woken once
		w.forget(laneKey, c)
	}
	clear(q[:k]) // the list keeps q[k:]; the woken are not kept alive by it
	if k == len(q) {
		delete(w.waiting, laneKey)
	} else {
		w.waiting[laneKey] = q[k:]
	}
}

// offer hands h to the lane's oldest waiter and unregisters it; false
// when none waits. taken, when set, runs before the waiter can see h.
func (w *wakeups) offer(laneKey string, h handed, taken func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.waiting[laneKey]
	if len(q) == 0 {
		return false
	}
	c := q[0]
	w.remove(laneKey, c)
	if taken != nil {
		taken()
	}
	c <- h // buffered, and each waiter receives once
	return true
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
