package dispatcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	testingclock "k8s.io/utils/clock/testing"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

// recordingPublisher passes events on to Redis and remembers their types,
// so a test counts the live events an edge published.
type recordingPublisher struct {
	next events.Publisher
	mu   sync.Mutex
	got  []string
}

func (p *recordingPublisher) Publish(ctx context.Context, payloads ...[]byte) error {
	for _, payload := range payloads {
		var e events.Event
		if err := json.Unmarshal(payload, &e); err != nil {
			return err
		}
		p.mu.Lock()
		p.got = append(p.got, e.Type+" "+e.PoolID)
		p.mu.Unlock()
	}
	return p.next.Publish(ctx, payloads...)
}

func (p *recordingPublisher) events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// scheduleEnv is an env with an evaluator on a fake clock, its published
// events recorded, and a webhook subscribed to pool events (their
// deliveries are the events committed in Postgres).
type scheduleEnv struct {
	*env
	clock *testingclock.FakeClock
	pub   *recordingPublisher
}

func newScheduleEnv(t *testing.T, start time.Time) *scheduleEnv {
	t.Helper()
	e := newEnv(t)
	_, err := e.store.CreateWebhook(t.Context(), e.org.ID, "https://hooks.example.com/pools", "", []string{apiv1.EventPoolPaused, apiv1.EventPoolResumed})
	require.NoError(t, err)
	return &scheduleEnv{env: e, clock: testingclock.NewFakeClock(start), pub: &recordingPublisher{next: e.queue}}
}

// evaluator is one replica's Schedule Evaluator.
func (s *scheduleEnv) evaluator() *ScheduleEvaluator {
	return NewScheduleEvaluator(s.store, s.queue, events.NewBus(s.pub, s.clock.Now), s.clock, slog.New(slog.DiscardHandler))
}

func (s *scheduleEnv) poolWith(name string, windows ...store.PauseWindow) store.Pool {
	s.t.Helper()
	set := store.DefaultPoolSettings()
	set.Name = name
	set.PauseWindows = windows
	require.NoError(s.t, set.Validate())
	p, err := s.store.CreatePool(context.Background(), s.org.ID, set)
	require.NoError(s.t, err)
	return p
}

// state is what a test asserts of a pool after a round.
type poolState struct {
	Status      string
	PausedBy    string
	RedisPaused bool
	EdgeApplied time.Time
}

func (s *scheduleEnv) state(id string) poolState {
	s.t.Helper()
	p, err := s.store.GetPool(context.Background(), store.PoolScope{OrgID: s.org.ID}, id)
	require.NoError(s.t, err)
	paused, err := s.queue.Paused(context.Background(), id)
	require.NoError(s.t, err)
	st := poolState{Status: p.Status, RedisPaused: paused}
	if p.PausedBy != nil {
		st.PausedBy = *p.PausedBy
	}
	if p.ScheduleEdgeAppliedAt != nil {
		st.EdgeApplied = p.ScheduleEdgeAppliedAt.UTC()
	}
	return st
}

// deliveries counts the pool events committed for the webhook.
func (s *scheduleEnv) deliveries(typ string) int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.db.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE event_type = $1`, typ).Scan(&n))
	return n
}

func (s *scheduleEnv) round(ev *ScheduleEvaluator, want int) {
	s.t.Helper()
	n, err := ev.Evaluate(context.Background())
	require.NoError(s.t, err)
	require.Equal(s.t, want, n, "edges applied at %s", s.clock.Now().UTC())
}

// manual pauses or resumes as POST /v1/pools/{id}/pause|resume does.
func (s *scheduleEnv) manual(id string, paused bool) {
	s.t.Helper()
	status := apiv1.PoolActive
	if paused {
		status = apiv1.PoolPaused
	}
	_, err := s.store.SetPoolStatus(context.Background(), store.PoolScope{OrgID: s.org.ID}, id, status)
	require.NoError(s.t, err)
	require.NoError(s.t, s.queue.SetPaused(context.Background(), id, paused))
}

var nightUTC = store.PauseWindow{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "UTC"}

// TestScheduledPauseFollowsEdges walks a night window (00:00–06:00 UTC)
// with an injected clock through real Postgres, Redis and a coordinator:
// the start pauses exactly as a manual pause (claims refused, status
// paused by schedule, one event), the end resumes, a manual resume inside
// the window holds until the next edge, and a manual pause holds until the
// next start takes over.
func TestScheduledPauseFollowsEdges(t *testing.T) {
	t.Parallel()
	// A whole minute before the next UTC midnight: near the real time, so
	// claims and leases stay ordinary.
	midnight := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	s := newScheduleEnv(t, midnight.Add(-time.Minute))
	in := s.start(Config{Clock: s.clock})
	ev := s.evaluator()
	p := s.poolWith("night", nightUTC)
	w := s.worker(in.addr, p.ID)

	// First look at new windows outside of them: nothing changes, the
	// latest edge (yesterday 06:00) is recorded.
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "active", EdgeApplied: midnight.Add(-18 * time.Hour)}, s.state(p.ID))
	s.round(ev, 0)
	assert.Empty(t, s.pub.events())

	// Midnight: paused by the schedule, claims refused at once.
	ids := s.submit(p.ID, 1)
	s.clock.SetTime(midnight)
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: midnight}, s.state(p.ID))
	j, err := w.claim(t.Context(), "pod-1", 0)
	require.NoError(t, err)
	assert.Nil(t, j, "a pool paused by its schedule hands out no job")
	s.round(ev, 0)
	assert.Equal(t, []string{"pool.paused " + p.ID}, s.pub.events())
	assert.Equal(t, 1, s.deliveries(apiv1.EventPoolPaused))

	// 02:00, manual resume: it holds inside the window.
	s.clock.SetTime(midnight.Add(2 * time.Hour))
	s.manual(p.ID, false)
	s.round(ev, 0)
	s.clock.SetTime(midnight.Add(5*time.Hour + 59*time.Minute))
	s.round(ev, 0)
	assert.Equal(t, poolState{Status: "active", EdgeApplied: midnight}, s.state(p.ID))
	got := w.mustClaim(t, "pod-2")
	assert.Equal(t, ids[0].String(), got.GetId(), "the manual resume lets the waiting job run")

	// 06:00: the end edge applies and leaves the running pool running.
	s.clock.SetTime(midnight.Add(6 * time.Hour))
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "active", EdgeApplied: midnight.Add(6 * time.Hour)}, s.state(p.ID))

	// 07:00, manual pause: it holds until the next start, which takes it
	// over (paused by schedule), and the end after it resumes.
	s.clock.SetTime(midnight.Add(7 * time.Hour))
	s.manual(p.ID, true)
	assert.Equal(t, "manual", s.state(p.ID).PausedBy)
	s.round(ev, 0)
	s.clock.SetTime(midnight.Add(24 * time.Hour))
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: midnight.Add(24 * time.Hour)}, s.state(p.ID))
	s.clock.SetTime(midnight.Add(30 * time.Hour))
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "active", RedisPaused: false, EdgeApplied: midnight.Add(30 * time.Hour)}, s.state(p.ID))

	// Live events come from status changes the evaluator made: the first
	// midnight and the last 06:00 (the manual ones publish through the API;
	// the second midnight found the pool paused already).
	assert.Equal(t, []string{"pool.paused " + p.ID, "pool.resumed " + p.ID}, s.pub.events())
	assert.Equal(t, 2, s.deliveries(apiv1.EventPoolPaused), "the first midnight's and the manual pause's")
	assert.Equal(t, 2, s.deliveries(apiv1.EventPoolResumed), "the manual resume's and the last 06:00's")
}

// TestScheduleEdgeAppliedOnce races replicas for the same edges: two
// evaluators (and repeated rounds of each) apply each pool's midnight edge
// exactly once, with one committed event and one live event per pool.
func TestScheduleEdgeAppliedOnce(t *testing.T) {
	t.Parallel()
	midnight := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := newScheduleEnv(t, midnight.Add(-time.Hour))
	const pools = 8
	var ids []string
	for i := range pools {
		ids = append(ids, s.poolWith("race-"+string(rune('a'+i)), nightUTC).ID)
	}
	a, b := s.evaluator(), s.evaluator()
	s.round(a, pools) // first look: yesterday's 06:00 edge, no change
	s.clock.SetTime(midnight)

	var mu sync.Mutex
	applied := 0
	g, ctx := errgroup.WithContext(t.Context())
	for _, ev := range []*ScheduleEvaluator{a, b, a, b, a, b} {
		g.Go(func() error {
			n, err := ev.Evaluate(ctx)
			mu.Lock()
			applied += n
			mu.Unlock()
			return err
		})
	}
	require.NoError(t, g.Wait())
	assert.Equal(t, pools, applied, "each pool's edge applied by exactly one round")
	for _, id := range ids {
		assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: midnight}, s.state(id), id)
	}
	assert.Len(t, s.pub.events(), pools, "one live event per pool")
	assert.Equal(t, pools, s.deliveries(apiv1.EventPoolPaused), "one committed event per pool")
}

// TestScheduleAfterDowntime: replicas down across several edges apply only
// the latest one when they come back, once.
func TestScheduleAfterDowntime(t *testing.T) {
	t.Parallel()
	midnight := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := newScheduleEnv(t, midnight.Add(time.Hour))
	p := s.poolWith("downtime", nightUTC)
	s.round(s.evaluator(), 1) // inside the window on first look: paused now
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: midnight}, s.state(p.ID))

	// Down from 01:00 until three days later at 03:00: three 06:00 ends and
	// three midnights missed; a new process applies the last midnight only,
	// which finds the pool paused already.
	s.clock.SetTime(midnight.Add(3*24*time.Hour + 3*time.Hour))
	restarted := s.evaluator()
	s.round(restarted, 1)
	s.round(restarted, 0)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: midnight.Add(3 * 24 * time.Hour)}, s.state(p.ID))

	// Down again until 09:00 the next day: the latest edge is that day's
	// 06:00 end, applied once.
	s.clock.SetTime(midnight.Add(4*24*time.Hour + 9*time.Hour))
	s.round(s.evaluator(), 1)
	s.round(s.evaluator(), 0)
	assert.Equal(t, poolState{Status: "active", EdgeApplied: midnight.Add(4*24*time.Hour + 6*time.Hour)}, s.state(p.ID))
	assert.Equal(t, []string{"pool.paused " + p.ID, "pool.resumed " + p.ID}, s.pub.events())
	assert.Equal(t, 1, s.deliveries(apiv1.EventPoolResumed))
}

// TestSchedulePauseInParisAcrossDST follows a 00:00–06:00 Europe/Paris
// window over the night the clocks go forward (2026-03-29, 02:00 CET →
// 03:00 CEST): it pauses at 23:00 UTC and resumes at 04:00 UTC, not 05:00.
func TestSchedulePauseInParisAcrossDST(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 28, 22, 59, 59, 0, time.UTC) // 23:59:59 CET
	s := newScheduleEnv(t, start)
	p := s.poolWith("paris", store.PauseWindow{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"})
	ev := s.evaluator()
	s.round(ev, 1)
	assert.Equal(t, "active", s.state(p.ID).Status)

	s.clock.Step(time.Second) // 00:00 Paris = 23:00 UTC
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: start.Add(time.Second)}, s.state(p.ID))

	s.clock.SetTime(time.Date(2026, 3, 29, 3, 59, 59, 0, time.UTC)) // 05:59:59 CEST
	s.round(ev, 0)
	assert.Equal(t, "paused", s.state(p.ID).Status)
	s.clock.Step(time.Second) // 06:00 CEST = 04:00 UTC
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "active", EdgeApplied: time.Date(2026, 3, 29, 4, 0, 0, 0, time.UTC)}, s.state(p.ID))
}

// TestScheduleWindowChanges: changed windows are evaluated afresh. Windows
// added inside their own window pause at once; removing the windows of a
// pool the schedule paused resumes it; windows added outside leave a
// manual pause alone (the edge that would resume it predates them).
func TestScheduleWindowChanges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	s := newScheduleEnv(t, now)
	ev := s.evaluator()
	p := s.poolWith("changes")
	s.round(ev, 0) // no windows, not paused by a schedule: not looked at

	setWindows := func(id string, ws ...store.PauseWindow) {
		t.Helper()
		_, err := s.store.UpdatePool(t.Context(), store.PoolScope{OrgID: s.org.ID}, id, func(set *store.PoolSettings) error {
			set.PauseWindows = ws
			return nil
		})
		require.NoError(t, err)
	}
	setWindows(p.ID, nightUTC)
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "schedule", RedisPaused: true, EdgeApplied: now.Add(-2 * time.Hour)}, s.state(p.ID))

	setWindows(p.ID)
	assert.True(t, s.state(p.ID).EdgeApplied.IsZero(), "a window change clears the applied edge")
	s.round(ev, 1)
	s.round(ev, 0)
	st := s.state(p.ID)
	assert.Equal(t, "active", st.Status)
	assert.False(t, st.RedisPaused)

	q := s.poolWith("manual")
	s.manual(q.ID, true)
	setWindows(q.ID, store.PauseWindow{Start: "0 12 * * *", End: "0 13 * * *", Timezone: "UTC"})
	s.round(ev, 1)
	assert.Equal(t, poolState{Status: "paused", PausedBy: "manual", RedisPaused: true, EdgeApplied: now.Add(-13 * time.Hour)}, s.state(q.ID))

	// Setting the same windows again keeps the applied edge.
	setWindows(q.ID, store.PauseWindow{Start: "0 12 * * *", End: "0 13 * * *", Timezone: "UTC"})
	assert.Equal(t, now.Add(-13*time.Hour), s.state(q.ID).EdgeApplied)
	s.round(ev, 0)
}
