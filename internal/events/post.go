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

// ErrBacklog is Post's answer when MaxPosted events already wait.
var ErrBacklog = errors.New("events: too many events waiting to be published")

// posted is an event waiting for its round trip.
type posted struct {
	payload []byte
	at      time.Time
}

// Post stamps e and queues it for publishing without waiting for the
// round trip: the events posted within PostWindow of the first go
// together, in the order they were posted, one round trip in flight at a
// time. It is for the hot path's events (a job started, completed),
// which nobody waits on: live subscribers are told a few milliseconds
// later, and webhooks read Postgres's outbox, not these. A round trip's
// failure is reported to OnPostError's function (the events are not sent
// again: pub/sub keeps nothing for subscribers that miss them anyway).
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
	b.posts = append(b.posts, posted{payload: payload, at: b.now()})
	if !b.sending {
		b.sending = true
		b.idle = make(chan struct{})
		go b.sendPosts()
	}
	return nil
}

// OnPostError makes the bus report a failed round trip of posted events
// (n of them lost) to fn. Set it before the first Post.
func (b *Bus) OnPostError(fn func(n int, err error)) { b.postErr = fn }

// sendPosts waits the window, then sends what was posted, a batch per
// round trip, until nothing waits.
func (b *Bus) sendPosts() {
	<-b.after(b.window)
	for {
		b.postMu.Lock()
		n := min(len(b.posts), maxPublishBatch)
		if n == 0 {
			b.sending = false
			close(b.idle)
			b.postMu.Unlock()
			return
		}
		batch := b.posts[:n:n]
		b.posts = b.posts[n:]
		b.postMu.Unlock()
		payloads := make([][]byte, len(batch))
		for i, p := range batch {
			payloads[i] = p.payload
		}
		b.batches(len(payloads))
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		err := b.pub.Publish(ctx, payloads...)
		cancel()
		if err != nil {
			b.postErr(len(payloads), err)
			continue
		}
		now := b.now()
		for _, p := range batch {
			b.observe(now.Sub(p.at))
		}
	}
}

// Flush waits until every event posted before it has had its round trip,
// or ctx ends; a server calls it as it stops so that the last events are
// not left behind.
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
