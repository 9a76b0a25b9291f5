package dispatcher

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
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
// which claims it without a push or a pop (Coordinator.Offer). Or a
// submission reserves an idle waiter before its statement (reserve) and
// settles it after: with the job its statement inserted claimed for the
// waiter's worker, with the job to claim, or with a wake
// (Coordinator.Reserve).
type wakeups struct {
	mu      sync.Mutex
	waiting map[string][]chan handed // lane key → waiters, oldest first
	// idle holds the waiters known to have found their lane empty (see
	// join), and idleOn counts them by lane key.
	idle   map[<-chan handed]bool
	idleOn map[string]int
	// workers holds each registered waiter's worker, for reserve.
	workers map[<-chan handed]store.Worker
	// reserved holds the waiters reserved by a submission and not settled
	// yet; a waiter that gave up waiting for its settling is dropped.
	reserved map[<-chan handed]bool
	// after is the coordinator's clock's After: how long a reserved waiter
	// that is leaving waits for its settling (reservedWait).
	after func(time.Duration) <-chan time.Time
	// unclaimed takes a handed job that its waiter left with, unclaimed,
	// when no other claim waits on its lane: it goes onto its lane's list.
	unclaimed func(handed)
	// wakes counts each lane's wakes (pushes announced, and wakes passed
	// on); drained holds, by lane, when a pop of this coordinator last
	// found the lane empty with no wake since it began (foundEmpty). A
	// wake clears the lane's entry.
	wakes   map[string]uint64
	drained map[string]time.Time
}

// handed is what a waiting claim receives: a wake (the zero value), or a
// job handed to it, of organization org on lane of pool: to claim, or
// already claimed for it (claimed, under the claim token token) by the
// statement that inserted it.
type handed struct {
	pool, lane, id, org string
	claimed             *store.ClaimedJob
	token               string
}

func newWakeups(unclaimed func(handed), after func(time.Duration) <-chan time.Time) *wakeups {
	return &wakeups{waiting: map[string][]chan handed{}, idle: map[<-chan handed]bool{}, idleOn: map[string]int{},
		workers: map[<-chan handed]store.Worker{}, reserved: map[<-chan handed]bool{}, after: after, unclaimed: unclaimed,
		wakes: map[string]uint64{}, drained: map[string]time.Time{}}
}

// reservedWait bounds how long a reserved waiter that is leaving (its
// wait is up, its pod gone, the coordinator stopping) waits for the
// submission to settle it: longer than a submission's statement takes
// short of trouble (its group's timeout). A settling that comes later
// finds the waiter gone and deals with the job itself (Reserve).
const reservedWait = groupCommitTimeout + 5*time.Second

// join registers a waiter of worker on the lane whose list is laneKey;
// its channel receives one value when a push wakes it, a job is handed to
// it or a reservation of it is settled. done unregisters it, and passes on
// what it received but will not use: a wake to the next waiter, a handed
// job to the next waiter or, when none is left, to unclaimed. A job
// claimed for it cannot be passed on: done returns it, for the caller to
// hand to its pod or back to its queue. A reserved waiter's done first
// waits for its settling (at most reservedWait).
//
// arriving says the claim has not popped yet. join answers skip when the
// claim may wait without a pop: it arrives while an idle waiter is
// registered on the lane, one that popped nothing after it registered
// (setIdle) and has not been woken or handed a job since, or knownEmpty
// (a pop found the lane empty and no push has been announced since,
// emptyNow: the caller asked). A
// push wakes the lane's oldest waiters, and a waiter that leaves with a
// wake passes it on, so every id pushed since that empty pop has a claim
// on its way to pop it: the newcomer, idle from the start, would only
// find the list empty. Should a wake have been lost (the subscription
// reconnecting), the id is found at the waiters' next poll, as it would
// be without this.
func (w *wakeups) join(laneKey string, arriving bool, worker store.Worker, knownEmpty bool) (ch <-chan handed, done func() handed, skip bool) {
	c := make(chan handed, 1)
	w.mu.Lock()
	skip = arriving && (w.idleOn[laneKey] > 0 || knownEmpty)
	w.waiting[laneKey] = append(w.waiting[laneKey], c)
	w.workers[c] = worker
	if skip {
		w.idle[c] = true
		w.idleOn[laneKey]++
	}
	w.mu.Unlock()
	return c, func() handed {
		w.mu.Lock()
		w.remove(laneKey, c)
		reserved := w.reserved[c]
		w.mu.Unlock()
		h, received := handed{}, false
		if reserved {
			h, received = w.awaitSettling(c)
		} else {
			select {
			case h = <-c:
				received = true
			default:
			}
		}
		switch {
		case !received:
		case h.claimed != nil:
			return h
		case h.id == "": // received, but leaving: pass it on
			w.wake(laneKey, 1)
		case !w.offer(laneKey, h, nil):
			w.unclaimed(h)
		}
		return handed{}
	}, skip
}

// awaitSettling waits for reserved waiter c's settling, at most
// reservedWait; past that c is no longer reserved, and a settling that
// comes later finds it gone.
func (w *wakeups) awaitSettling(c chan handed) (handed, bool) {
	select {
	case h := <-c:
		return h, true
	case <-w.after(reservedWait):
	}
	w.mu.Lock()
	delete(w.reserved, c)
	w.mu.Unlock()
	select {
	case h := <-c: // settled as it timed out
		return h, true
	default:
		return handed{}, false
	}
}

// idleLane says whether an idle waiter (see join) is registered on the
// lane: its last pop found the lane empty and no push has woken it since.
func (w *wakeups) idleLane(laneKey string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idleOn[laneKey] > 0
}

// wakesOn is the lane's wake count, for foundEmpty after a pop.
func (w *wakeups) wakesOn(laneKey string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wakes[laneKey]
}

// foundEmpty records that a pop of the lane, begun at wake count seen,
// found it empty at now. A wake that came meanwhile (a push the pop may
// have missed) makes it tell nothing.
func (w *wakeups) foundEmpty(laneKey string, seen uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wakes[laneKey] == seen {
		w.drained[laneKey] = now
	}
}

// emptyNow says a pop found the lane empty within fresh before now and no
// push has been announced on it since: another pop would find it empty
// too. A wake lost while the subscription reconnects could make it wrong
// until fresh has passed; what relies on it (a Complete's next claim)
// then waits without a pop until its completion answers, and its pod
// claims with Claim, which pops.
func (w *wakeups) emptyNow(laneKey string, now time.Time, fresh time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.drained[laneKey]
	return ok && now.Sub(at) < fresh
}

// reserve takes the lane's oldest idle waiter (see join) off its list for
// a submission, which settles it (settle) once its statement has run; ok
// is false when no waiter of the lane is idle. An idle waiter's last pop
// found the lane empty and no push has woken it since: no job of the
// lane waits for it.
func (w *wakeups) reserve(laneKey string) (ch chan handed, worker store.Worker, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idleOn[laneKey] == 0 {
		return nil, store.Worker{}, false
	}
	i := slices.IndexFunc(w.waiting[laneKey], func(c chan handed) bool { return w.idle[c] })
	if i < 0 {
		return nil, store.Worker{}, false
	}
	c := w.waiting[laneKey][i]
	worker = w.workers[c]
	w.remove(laneKey, c)
	w.reserved[c] = true
	return c, worker, true
}

// settle gives reserved waiter c what its submission's statement came to
// (a claimed job, a job to claim, or a wake), running taken, when set,
// before the waiter can see it; false when the waiter gave up waiting for
// it (awaitSettling) and h was not given.
func (w *wakeups) settle(c chan handed, h handed, taken func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.reserved[c] {
		return false
	}
	delete(w.reserved, c)
	if taken != nil {
		taken()
	}
	c <- h // buffered, and a reserved waiter receives nothing else
	return true
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

// forget drops c's worker and idle mark as it leaves the lane's list;
// the caller holds mu.
func (w *wakeups) forget(laneKey string, c chan handed) {
	delete(w.workers, c)
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
	w.wakes[laneKey]++
	delete(w.drained, laneKey)
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
