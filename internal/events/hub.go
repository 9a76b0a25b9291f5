package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Hub fans the events channel out to this replica's subscribers (WebSocket
// clients). Every replica runs one, so an event published anywhere reaches
// every client. A subscriber whose buffer is full is dropped at once: a slow
// client never slows the bus or other clients.
type Hub struct {
	rdb     redis.UniversalClient
	channel string
	buffer  int
	observe func(time.Duration)
	log     *slog.Logger

	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewHub returns a hub on channel; each subscriber buffers up to buffer events.
func NewHub(rdb redis.UniversalClient, channel string, buffer int, log *slog.Logger) *Hub {
	return &Hub{rdb: rdb, channel: channel, buffer: max(buffer, 1), observe: func(time.Duration) {}, log: log, subs: map[*Subscription]struct{}{}}
}

// ObserveDispatch reports how long fanning out one event took.
func (h *Hub) ObserveDispatch(fn func(time.Duration)) { h.observe = fn }

// Subscription receives the events of one organization, optionally only of
// some jobs. Dropped is closed when the hub gave up on a slow reader.
type Subscription struct {
	C       chan []byte
	Dropped chan struct{}
	org     uuid.UUID
	jobs    map[uuid.UUID]bool
}

// Subscribe registers a subscriber for org's events (all jobs when jobs is empty).
func (h *Hub) Subscribe(org uuid.UUID, jobs []uuid.UUID) *Subscription {
	s := &Subscription{C: make(chan []byte, h.buffer), Dropped: make(chan struct{}), org: org}
	if len(jobs) > 0 {
		s.jobs = make(map[uuid.UUID]bool, len(jobs))
		for _, j := range jobs {
			s.jobs[j] = true
		}
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe removes s; it is safe to call after s was dropped.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Subscribers is the number of live subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run receives the channel until ctx ends, reconnecting after Redis errors.
func (h *Hub) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := h.receive(ctx); err != nil && ctx.Err() == nil {
			h.log.WarnContext(ctx, "event hub lost its redis subscription; resubscribing (live clients miss events meanwhile)", slog.Any("error", err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (h *Hub) receive(ctx context.Context) error {
	ps := h.rdb.Subscribe(ctx, h.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe %s: %w", h.channel, err)
	}
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return fmt.Errorf("subscription to %s closed", h.channel)
			}
			h.Dispatch([]byte(m.Payload))
		}
	}
}

// Dispatch hands one payload to every matching subscriber without blocking.
func (h *Hub) Dispatch(payload []byte) {
	start := time.Now()
	var e struct {
		OrgID *uuid.UUID `json:"org_id"`
		JobID *uuid.UUID `json:"job_id"`
	}
	if err := json.Unmarshal(payload, &e); err != nil || e.OrgID == nil {
		return // platform events (the shared pool) have no tenant audience
	}
	h.mu.Lock()
	for s := range h.subs {
		if s.org != *e.OrgID || (s.jobs != nil && (e.JobID == nil || !s.jobs[*e.JobID])) {
			continue
		}
		select {
		case s.C <- payload:
		default:
			delete(h.subs, s)
			close(s.Dropped)
		}
	}
	h.mu.Unlock()
	h.observe(time.Since(start))
}
