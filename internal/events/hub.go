package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/queue"
)

// Hub fans the events channel out to this replica's subscribers (WebSocket
// clients). Every replica runs one, so an event published anywhere reaches
// every client. A subscriber whose buffer is full is dropped at once: a slow
// client never slows the bus or other clients.
//
// A hub listens on Redis only while it has subscribers (and for its linger
// after the last one leaves): every replica would otherwise receive every
// event of the platform, about three a job, for nobody. A new subscriber
// waits for the subscription to be live (WaitLive).
type Hub struct {
	rdb     redis.UniversalClient
	channel string
	buffer  int
	linger  time.Duration
	observe func(time.Duration)
	log     *slog.Logger
	// changed wakes Run when a subscriber came or went (one wake pending
	// at most).
	changed chan struct{}
	// running is set while Run runs: one subscription a hub.
	running atomic.Bool

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// live is closed while the Redis subscription is live; an open one
	// replaces it when the subscription ends.
	live chan struct{}
}

// ErrHubRunning is Run's answer while the hub already runs.
var ErrHubRunning = errors.New("events: the hub is running already")

// DefaultLinger is how long a hub keeps its Redis subscription after its
// last subscriber left, so that clients that reconnect find it live.
const DefaultLinger = time.Minute

// NewHub returns a hub on channel; each subscriber buffers up to buffer events.
func NewHub(rdb redis.UniversalClient, channel string, buffer int, log *slog.Logger) *Hub {
	return &Hub{
		rdb: rdb, channel: channel, buffer: max(buffer, 1), linger: DefaultLinger,
		observe: func(time.Duration) {}, log: log, changed: make(chan struct{}, 1),
		subs: map[*Subscription]struct{}{}, live: make(chan struct{}),
	}
}

// Linger sets how long the hub keeps its Redis subscription after its last
// subscriber left (DefaultLinger). Set it before Run.
func (h *Hub) Linger(d time.Duration) *Hub {
	h.linger = max(d, 0)
	return h
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
	h.wake()
	return s
}

// WaitLive blocks until the hub's Redis subscription is live: from then on
// every event published reaches the subscribers registered before. The hub
// subscribes only while it has subscribers, so call it after Subscribe.
func (h *Hub) WaitLive(ctx context.Context) error {
	h.mu.Lock()
	live := h.live
	h.mu.Unlock()
	select {
	case <-live:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the event hub's subscription to %s: %w", h.channel, context.Cause(ctx))
	}
}

// Unsubscribe removes s; it is safe to call after s was dropped.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	h.wake()
}

// wake tells Run that the subscribers changed.
func (h *Hub) wake() {
	select {
	case h.changed <- struct{}{}:
	default: // a wake is pending already
	}
}

// Subscribers is the number of live subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run listens on the channel while the hub has subscribers, until ctx
// ends, resubscribing after Redis errors. A hub runs once at a time: a
// second Run while one runs returns ErrHubRunning.
func (h *Hub) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return ErrHubRunning
	}
	defer h.running.Store(false)
	for ctx.Err() == nil {
		for h.Subscribers() == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-h.changed:
			}
		}
		if err := h.receive(ctx); err != nil && ctx.Err() == nil {
			h.log.WarnContext(ctx, "event hub lost its redis subscription; resubscribing (live clients miss events meanwhile)", slog.Any("error", err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// receive subscribes and dispatches until ctx ends, Redis fails, or the
// hub has had no subscriber for its linger (it returns nil then).
func (h *Hub) receive(ctx context.Context) error {
	ps := h.rdb.Subscribe(ctx, h.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe %s: %w", h.channel, err)
	}
	ch := ps.Channel(redis.WithChannelSize(1024))
	h.mu.Lock()
	close(h.live)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		select {
		case <-h.live:
			h.live = make(chan struct{})
		default: // replaced already, as the hub went idle
		}
		h.mu.Unlock()
	}()
	linger := time.NewTimer(h.linger)
	linger.Stop() // armed when the last subscriber leaves
	idle := false
	for {
		if n := h.Subscribers(); n == 0 && !idle {
			linger.Reset(h.linger)
			idle = true
		} else if n > 0 && idle {
			linger.Stop()
			idle = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.changed:
		case <-linger.C:
			h.mu.Lock()
			gone := len(h.subs) == 0
			if gone {
				// Not live from here on: a subscriber coming now waits
				// for the next subscription.
				h.live = make(chan struct{})
			}
			h.mu.Unlock()
			if gone {
				return nil
			}
			idle = false
		case m, ok := <-ch:
			if !ok {
				return fmt.Errorf("subscription to %s closed", h.channel)
			}
			if h.Subscribers() > 0 { // no copy of the payload for nobody
				for p := range queue.Events(m.Payload) {
					h.Dispatch([]byte(p))
				}
			}
		}
	}
}

// Dispatch hands one payload to every matching subscriber without blocking.
// With no subscribers it returns before reading the payload: every replica
// receives every event of the platform (about three a job), and most have
// no WebSocket client most of the time.
func (h *Hub) Dispatch(payload []byte) {
	if h.Subscribers() == 0 {
		return
	}
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
