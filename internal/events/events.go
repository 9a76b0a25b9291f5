// Package events defines the job and pool events MpegFlow emits and fans out
// to every apiserver replica over Redis pub/sub, for WebSocket clients
// (webhooks are delivered from Postgres's outbox, not from these).
package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/groupcommit"
)

// Event is one thing that happened to a job or a pool.
type Event struct {
	ID     uuid.UUID      `json:"id"`
	Type   string         `json:"type"` // job.queued, job.cancelled, pool.paused, ...
	OrgID  *uuid.UUID     `json:"org_id,omitempty"`
	JobID  *uuid.UUID     `json:"job_id,omitempty"`
	PoolID string         `json:"pool_id,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
	At     time.Time      `json:"at"`
}

// Publisher sends raw payloads (compact JSON, which holds no newline) to
// every subscriber, in order, in one round trip.
type Publisher interface {
	Publish(ctx context.Context, payloads ...[]byte) error
}

// Bus stamps and publishes events. Concurrent Emits are published together:
// an Emit that finds no publish in flight sends at once (under light load
// nothing waits); those that arrive while one is in flight go in the next,
// all in one round trip (groupcommit: the window is the previous round
// trip, no timer). One Emit round trip is in flight at a time, so Emits
// are published in the order they were made. Post (post.go) queues an
// event without waiting, on a pipeline of its own: Emits and Posts are
// not ordered against each other.
type Bus struct {
	pub     Publisher
	now     func() time.Time
	observe func(time.Duration)
	batches func(int)
	group   *groupcommit.Group[[]byte, error]

	// Post's queue (post.go).
	after   func(time.Duration) <-chan time.Time
	postErr func(n int, err error)
	postMu  sync.Mutex
	posts   []posted
	sending bool          // posts wait for their round trip
	idle    chan struct{} // closed when the sender has sent everything
	// senderUp: sendPosts runs (sending or lingering); wake tells a
	// lingering one that posts wait; linger times its wait.
	senderUp bool
	wake     chan struct{}
	linger   func() <-chan time.Time
}

// publishTimeout bounds one round trip of publishes.
const publishTimeout = 10 * time.Second

// maxPublishBatch caps the events sent in one round trip.
const maxPublishBatch = 256

// NewBus returns a Bus publishing through pub, stamping with now.
func NewBus(pub Publisher, now func() time.Time) *Bus {
	b := &Bus{pub: pub, now: now, observe: func(time.Duration) {}, batches: func(int) {},
		after: time.After, postErr: func(int, error) {},
		wake: make(chan struct{}, 1), linger: func() <-chan time.Time { return time.After(SenderLinger) }}
	// Each payload gets the round trip's error; the batch as a whole never
	// fails, so none is sent again alone: a publish is fire-and-forget,
	// and one that may have reached Redis is not repeated.
	send := func(ctx context.Context, payloads [][]byte) ([]error, error) {
		b.batches(len(payloads))
		err := pub.Publish(ctx, payloads...)
		errs := make([]error, len(payloads))
		for i := range errs {
			errs[i] = err
		}
		return errs, nil
	}
	b.group = groupcommit.New("publish", slog.New(slog.DiscardHandler), send, nil, maxPublishBatch, 1, publishTimeout, nil)
	return b
}

// ObserveDispatch makes the bus report how long each publish took, from
// Emit or Post to the round trip's answer (the
// mpegflow_event_bus_dispatch_duration_seconds histogram).
func (b *Bus) ObserveDispatch(fn func(time.Duration)) { b.observe = fn }

// ObserveBatches makes the bus report how many events each round trip
// carried (mpegflow_group_commit_batch_size{kind="publish"}). Set it, like
// ObserveDispatch, before the first Emit.
func (b *Bus) ObserveBatches(fn func(int)) { b.batches = fn }

// Emit publishes e, filling its id and time, together with the events
// emitted concurrently.
func (b *Bus) Emit(ctx context.Context, e Event) error {
	return b.EmitVia(ctx, e, b.publish)
}

// publish sends payload in the next round trip of publishes.
func (b *Bus) publish(ctx context.Context, payload []byte) error {
	sent, err := b.group.Do(ctx, payload)
	if err != nil {
		return err // the caller left before its round trip started
	}
	return sent
}

// EmitVia is Emit with send in place of the bus's publisher, for a caller
// that sends the payload in one round trip with other Redis work (the
// submit path pushes the job and publishes job.queued in one script,
// queue.Queue.PushPublishMany). send must publish on the channel the bus's
// publisher uses.
func (b *Bus) EmitVia(ctx context.Context, e Event, send func(ctx context.Context, payload []byte) error) error {
	payload, err := b.stamp(&e)
	if err != nil {
		return err
	}
	start := time.Now()
	err = send(ctx, payload)
	b.observe(time.Since(start))
	if err != nil {
		return fmt.Errorf("emit %s: %w", e.Type, err)
	}
	return nil
}

// stamp fills e's id and time when they are unset and encodes it.
func (b *Bus) stamp(e *Event) ([]byte, error) {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	if e.At.IsZero() {
		e.At = b.now().UTC()
	}
	payload, err := encode(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	return payload, nil
}
