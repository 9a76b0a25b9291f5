// Package events defines the job and pool events MpegFlow emits and fans out
// to every apiserver replica over Redis pub/sub (WebSocket clients, webhooks
// and metrics consume them).
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
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

// Publisher sends raw payloads to every subscriber.
type Publisher interface {
	Publish(ctx context.Context, payload []byte) error
}

// Bus stamps and publishes events.
type Bus struct {
	pub     Publisher
	now     func() time.Time
	observe func(time.Duration)
}

// NewBus returns a Bus publishing through pub, stamping with now.
func NewBus(pub Publisher, now func() time.Time) *Bus {
	return &Bus{pub: pub, now: now, observe: func(time.Duration) {}}
}

// ObserveDispatch makes the bus report how long each publish took (the
// mpegflow_event_bus_dispatch_duration_seconds histogram).
func (b *Bus) ObserveDispatch(fn func(time.Duration)) { b.observe = fn }

// Emit publishes e, filling its id and time.
func (b *Bus) Emit(ctx context.Context, e Event) error {
	return b.EmitVia(ctx, e, b.pub.Publish)
}

// EmitVia is Emit with send in place of the bus's publisher, for a caller
// that sends the payload in one round trip with other Redis work (the
// submit path pushes the job and publishes job.queued in one script,
// queue.Queue.PushPublish). send must publish on the channel the bus's
// publisher uses.
func (b *Bus) EmitVia(ctx context.Context, e Event, send func(ctx context.Context, payload []byte) error) error {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	if e.At.IsZero() {
		e.At = b.now().UTC()
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	start := time.Now()
	err = send(ctx, payload)
	b.observe(time.Since(start))
	if err != nil {
		return fmt.Errorf("emit %s: %w", e.Type, err)
	}
	return nil
}
