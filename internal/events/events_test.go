package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type publisherFunc func(ctx context.Context, payload []byte) error

func (f publisherFunc) Publish(ctx context.Context, payloads ...[]byte) error {
	for _, p := range payloads {
		if err := f(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func TestBusStampsAndPublishes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 1, 0, 0, 0, time.FixedZone("CET", 3600))
	var got []byte
	var observed int
	bus := events.NewBus(publisherFunc(func(_ context.Context, p []byte) error { got = p; return nil }), func() time.Time { return at })
	bus.ObserveDispatch(func(time.Duration) { observed++ })
	org := uuid.New()
	require.NoError(t, bus.Emit(t.Context(), events.Event{Type: "job.queued", OrgID: &org}))

	var e events.Event
	require.NoError(t, json.Unmarshal(got, &e))
	require.NotEqual(t, uuid.Nil, e.ID, "an id is given")
	require.Equal(t, uuid.Version(7), e.ID.Version(), "time-ordered ids")
	require.True(t, e.At.Equal(at), "stamped with the injected clock")
	require.Equal(t, time.UTC, e.At.Location())
	require.Equal(t, org, *e.OrgID)
	require.Equal(t, 1, observed)

	// Given fields are kept.
	id, given := uuid.New(), at.Add(-time.Hour).UTC()
	require.NoError(t, bus.Emit(t.Context(), events.Event{ID: id, Type: "pool.paused", At: given}))
	require.NoError(t, json.Unmarshal(got, &e))
	require.Equal(t, id, e.ID)
	require.True(t, e.At.Equal(given))
}

func TestBusWrapsPublishErrors(t *testing.T) {
	t.Parallel()
	down := errors.New("redis down")
	bus := events.NewBus(publisherFunc(func(context.Context, []byte) error { return down }), time.Now)
	err := bus.Emit(t.Context(), events.Event{Type: "job.failed"})
	require.ErrorIs(t, err, down)
	require.ErrorContains(t, err, "emit job.failed")
}

// TestBusEmitVia: a caller's send carries the stamped payload in place of
// the publisher (which sees nothing), is observed, and its error wrapped.
func TestBusEmitVia(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	published := 0
	observed := 0
	bus := events.NewBus(publisherFunc(func(context.Context, []byte) error { published++; return nil }), func() time.Time { return at })
	bus.ObserveDispatch(func(time.Duration) { observed++ })
	var got []byte
	require.NoError(t, bus.EmitVia(t.Context(), events.Event{Type: "job.queued"}, func(_ context.Context, p []byte) error { got = p; return nil }))
	var e events.Event
	require.NoError(t, json.Unmarshal(got, &e))
	require.Equal(t, "job.queued", e.Type)
	require.NotEqual(t, uuid.Nil, e.ID)
	require.True(t, e.At.Equal(at))
	require.Zero(t, published, "the bus's publisher is not used")
	require.Equal(t, 1, observed)

	down := errors.New("redis down")
	err := bus.EmitVia(t.Context(), events.Event{Type: "job.queued"}, func(context.Context, []byte) error { return down })
	require.ErrorIs(t, err, down)
	require.ErrorContains(t, err, "emit job.queued")
}

func payload(t *testing.T, org *uuid.UUID, job *uuid.UUID) []byte {
	t.Helper()
	b, err := json.Marshal(events.Event{ID: uuid.New(), Type: "job.progress", OrgID: org, JobID: job})
	require.NoError(t, err)
	return b
}

// TestHubRoutesByTenantAndJob checks the fan-out rules on Dispatch alone:
// an organization's subscribers see its events only, a job filter narrows
// them, platform events (no org) reach nobody.
func TestHubRoutesByTenantAndJob(t *testing.T) {
	t.Parallel()
	hub := events.NewHub(nil, "unused", 4, slog.New(slog.DiscardHandler))
	orgA, orgB, job1, job2 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	allA := hub.Subscribe(orgA, nil)
	job1A := hub.Subscribe(orgA, []uuid.UUID{job1})
	allB := hub.Subscribe(orgB, nil)

	hub.Dispatch(payload(t, &orgA, &job1))
	hub.Dispatch(payload(t, &orgA, &job2))
	hub.Dispatch(payload(t, &orgA, nil))
	hub.Dispatch(payload(t, nil, nil))
	hub.Dispatch([]byte("not json"))

	require.Len(t, allA.C, 3)
	require.Len(t, job1A.C, 1)
	require.Empty(t, allB.C, "another tenant sees nothing")
	require.Equal(t, 3, hub.Subscribers())
	hub.Unsubscribe(allB)
	require.Equal(t, 2, hub.Subscribers())
}

func TestHubDropsASlowSubscriber(t *testing.T) {
	t.Parallel()
	hub := events.NewHub(nil, "unused", 1, slog.New(slog.DiscardHandler))
	org := uuid.New()
	slow := hub.Subscribe(org, nil)
	fast := hub.Subscribe(org, nil)
	hub.Dispatch(payload(t, &org, nil))
	<-fast.C
	hub.Dispatch(payload(t, &org, nil)) // slow's buffer of one is full

	select {
	case <-slow.Dropped:
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	require.Len(t, fast.C, 1, "the fast one still receives")
	require.Equal(t, 1, hub.Subscribers())
	hub.Unsubscribe(slow) // safe after a drop
}

// TestHubIdleDispatchReadsNothing: a replica with no WebSocket client still
// receives every event of the platform; it must not decode them. The hub's
// dispatch timing is not observed for an event nobody was sent.
func TestHubIdleDispatchReadsNothing(t *testing.T) {
	hub := events.NewHub(nil, "unused", 4, slog.New(slog.DiscardHandler))
	observed := 0
	hub.ObserveDispatch(func(time.Duration) { observed++ })
	org := uuid.New()
	p := payload(t, &org, nil)
	require.Zero(t, testing.AllocsPerRun(100, func() { hub.Dispatch(p) }), "an idle hub decoded the event")
	require.Zero(t, observed)

	s := hub.Subscribe(org, nil)
	hub.Dispatch(p)
	require.Len(t, s.C, 1, "a subscriber, once there, receives")
	require.Equal(t, 1, observed)
}

// TestHubOverRedis runs two hubs (two replicas) on one real channel: an
// event published once reaches the matching subscriber of each, and Run
// returns when its context ends (goleak checks nothing is left behind).
func TestHubOverRedis(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	channel := prefix + ":events"
	log := slog.New(slog.DiscardHandler)
	org := uuid.New()
	ctx, cancel := context.WithCancel(t.Context())
	var subs []*events.Subscription
	done := make(chan struct{}, 2)
	for range 2 {
		hub := events.NewHub(rdb, channel, 8, log)
		subs = append(subs, hub.Subscribe(org, nil))
		go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	}
	defer func() { cancel(); <-done; <-done }()

	want := payload(t, &org, nil)
	// Publish until both replicas have subscribed and received it; a
	// replica that subscribed late may see it more than once.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for i, s := range subs {
		for received := false; !received; {
			select {
			case got := <-s.C:
				require.JSONEq(t, string(want), string(got))
				received = true
			case <-deadline:
				t.Fatalf("replica %d never received the event", i)
			case <-tick.C:
				require.NoError(t, rdb.Publish(t.Context(), channel, want).Err())
			}
		}
	}
}

// TestHubSplitsMessages: a message that carries several events (queue's
// Publish) reaches each subscriber as its events, one at a time, in
// order, each routed on its own.
func TestHubSplitsMessages(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	q := queue.New(rdb, queue.NewKeys(prefix))
	hub := events.NewHub(rdb, q.Keys().Events(), 8, slog.New(slog.DiscardHandler))
	org, other := uuid.New(), uuid.New()
	s := hub.Subscribe(org, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = hub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	require.NoError(t, hub.WaitLive(t.Context()))

	first, theirs, second := payload(t, &org, nil), payload(t, &other, nil), payload(t, &org, nil)
	require.NoError(t, q.Publish(t.Context(), first, theirs, second))
	for _, want := range [][]byte{first, second} {
		select {
		case got := <-s.C:
			require.JSONEq(t, string(want), string(got))
		case <-time.After(10 * time.Second):
			t.Fatal("an event of the message did not arrive")
		}
	}
	select {
	case got := <-s.C:
		t.Fatalf("another organization's event arrived: %s", got)
	default:
	}
}

// TestHubListensOnlyWhileSubscribed: a replica's hub holds a Redis
// subscription only while it has subscribers (and its linger after); a
// subscriber that waited for it to be live receives what is published then.
func TestHubListensOnlyWhileSubscribed(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	channel := prefix + ":events"
	hub := events.NewHub(rdb, channel, 8, slog.New(slog.DiscardHandler)).Linger(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = hub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	listeners := func() int64 {
		n, err := rdb.PubSubNumSub(t.Context(), channel).Result()
		require.NoError(t, err)
		return n[channel]
	}
	org := uuid.New()
	for round := range 2 {
		s := hub.Subscribe(org, nil)
		wait, stop := context.WithTimeout(t.Context(), 10*time.Second)
		require.NoError(t, hub.WaitLive(wait), "round %d", round)
		stop()
		require.EqualValues(t, 1, listeners(), "round %d: live means subscribed", round)
		require.ErrorIs(t, hub.Run(t.Context()), events.ErrHubRunning, "a second Run would subscribe twice")
		want := payload(t, &org, nil)
		require.NoError(t, rdb.Publish(t.Context(), channel, want).Err())
		select {
		case got := <-s.C:
			require.JSONEq(t, string(want), string(got))
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the event published once live never came", round)
		}
		hub.Unsubscribe(s)
		require.Eventually(t, func() bool { return listeners() == 0 }, 10*time.Second, 5*time.Millisecond,
			"round %d: the hub still listens with no subscriber", round)
	}
}

// TestHubWaitLiveEndsWithItsContext: a hub that cannot subscribe (here, not
// running) leaves a new subscriber waiting only as long as its context.
func TestHubWaitLiveEndsWithItsContext(t *testing.T) {
	t.Parallel()
	hub := events.NewHub(nil, "unused", 4, slog.New(slog.DiscardHandler))
	hub.Subscribe(uuid.New(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, hub.WaitLive(ctx), context.Canceled)
}
