package events

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PostWindow is how long a posted event waits for others to share its
// round trip: at 1,000 jobs a second a replica posts about two events a
// millisecond, so a round trip carries about ten instead of one, and a
// live subscriber sees each a few milliseconds later.
const PostWindow = 5 * time.Millisecond

// MaxPosted bounds the events posted and not yet sent. While Redis is
// slow or away they pile up; past this many a Post is refused
// (ErrBacklog) rather than held in memory or made to wait.
const MaxPosted = 16384

// MaxPostAge is how old a posted event may be when its round trip starts:
// one older (Redis was slow or away) is dropped and reported, not sent as
// live news long after the fact.
const MaxPostAge = 30 * time.Second

// ErrBacklog is Post's answer when MaxPosted events already wait.
var ErrBacklog = errors.New("events: too many events waiting to be published")

// errStale reports posted events dropped for their age.
var errStale = fmt.Errorf("events: posted more than %s before their round trip; dropped", MaxPostAge)

// posted is an event waiting for its round trip.
type posted struct {
	payload []byte
	at      time.Time // when it was posted (monotonic, for the age and the dispatch time)
}

// Post stamps e and queues it for publishing without waiting for the
// round trip: the events posted within PostWindow of the first go
// together, in the order they were posted, one round trip in flight at a
// time. It is for the hot path's events (a job started, completed),
// which nobody waits on: live subscribers are told a few milliseconds
// later, and webhooks read Postgres's outbox, not these. Events are in
// order as one bus posted them, not against those of Emit or of other
// replicas (subscribers order a job's events by their time). A failed
// round trip is reported to OnPostError's function and not sent again:
// pub/sub keeps nothing for subscribers that miss a message anyway.
func (b *Bus) Post(e Event) error {
	payload, err := b.stamp(&e)
	if err != nil {
		return err
	}
	b.postMu.Lock()
	defer b.postMu.Unlock()
	if len(b.posts) >= MaxPosted {
		return fmt.Errorf("post %s: %w", e.Type, ErrBacklog)
	}
	b.posts = append(b.posts, posted{payload: payload, at: time.Now()})
	if !b.sending {
		b.sending = true
		b.idle = make(chan struct{})
		if b.senderUp {
			select {
			case b.wake <- struct{}{}:
			default: // already woken
			}
		} else {
			b.senderUp = true
			go b.sendPosts()
		}
	}
	return nil
}

// OnPostError makes the bus report posted events that were not published
// (n of them, and why) to fn. Set it before the first Post.
func (b *Bus) OnPostError(fn func(n int, err error)) { b.postErr = fn }

// SenderLinger is how long the sender waits, once everything posted is
// sent, for the next post before it ends. Under load posts keep coming
// and one goroutine sends them all, its stack grown once, instead of a
// new goroutine each window growing its stack again through the round
// trip.
const SenderLinger = 100 * time.Millisecond

// sendPosts sends what is posted, a window after the first of each lot, a
// batch per round trip, until nothing has been posted for SenderLinger.
func (b *Bus) sendPosts() {
	for {
		<-b.after(PostWindow)
		b.sendAll()
		if !b.lingered() {
			return
		}
	}
}

// lingered waits for the next post (it reports true) or for SenderLinger
// to pass without one (false: the sender ends, and the next post starts
// another).
func (b *Bus) lingered() bool {
	select {
	case <-b.wake:
		return true
	case <-b.linger():
	}
	b.postMu.Lock()
	defer b.postMu.Unlock()
	if b.sending { // posted as the timer fired: its wake is spent here
		select {
		case <-b.wake:
		default:
		}
		return true
	}
	b.senderUp = false
	return false
}

// sendAll sends what was posted, a batch per round trip, until nothing
// waits.
func (b *Bus) sendAll() {
	for {
		batch, ok := b.nextPosts()
		if !ok {
			return
		}
		fresh, payloads := batch[:0], make([][]byte, 0, len(batch))
		for _, p := range batch {
			if time.Since(p.at) <= MaxPostAge {
				fresh, payloads = append(fresh, p), append(payloads, p.payload)
			}
		}
		if stale := len(batch) - len(fresh); stale > 0 {
			b.postErr(stale, errStale)
		}
		if len(fresh) == 0 {
			continue
		}
		b.batches(len(payloads))
		if err := b.publishPosts(payloads); err != nil {
			b.postErr(len(payloads), err)
			continue
		}
		for _, p := range fresh {
			b.observe(time.Since(p.at))
		}
	}
}

// nextPosts takes the next batch off the queue, or, when nothing waits,
// says so (ok false) and releases Flush's waiters.
func (b *Bus) nextPosts() (batch []posted, ok bool) {
	b.postMu.Lock()
	defer b.postMu.Unlock()
	n := min(len(b.posts), maxPublishBatch)
	if n == 0 {
		b.posts = nil // a backlog's array is not kept while idle
		b.sending = false
		close(b.idle)
		return nil, false
	}
	batch = make([]posted, n)
	copy(batch, b.posts)
	clear(b.posts[:n])
	b.posts = b.posts[n:]
	return batch, true
}

// publishPosts is one round trip; a publisher's panic is its error, so
// that the sender goes on and Flush still returns.
func (b *Bus) publishPosts(payloads [][]byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("publish panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	return b.pub.Publish(ctx, payloads...)
}

// Flush waits until nothing posted waits for its round trip (what is
// posted while it waits is waited for too), or ctx ends. A server calls it
// once its calls have stopped, so that their last events go out.
func (b *Bus) Flush(ctx context.Context) error {
	b.postMu.Lock()
	idle := b.idle
	b.postMu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush events: %w", context.Cause(ctx))
	}
}
