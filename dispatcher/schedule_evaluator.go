package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/utils/clock"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/schedule"
	"github.com/mpegflow/mpegflow/internal/store"
)

// ScheduleEvaluator applies the edges of pools' pause windows (scheduled
// pause, docs/design/0017-scheduled-pause.md). Every round it finds, for each
// pool with windows, the latest edge at or before now and, when that edge
// is later than the one last applied, applies it exactly as a manual pause
// or resume: status and paused_by in Postgres (with the pool event for
// webhooks) committed first, then the Redis pause key and the live event.
//
// Every replica runs it. The UPDATE is conditional on the last applied
// edge, so of replicas racing for one edge exactly one applies it; an edge
// is never applied twice, and after downtime only the latest missed edge
// is applied. A manual pause or resume in between stands until the next
// edge, because it leaves the last applied edge alone. A crash between the
// commit and the Redis write is repaired by the queue reconciler, which
// makes the pause key follow the status.
type ScheduleEvaluator struct {
	store *store.Store
	queue *queue.Queue
	bus   *events.Bus
	clock clock.PassiveClock
	log   *slog.Logger
}

// NewScheduleEvaluator returns an evaluator reading time from clk.
func NewScheduleEvaluator(st *store.Store, q *queue.Queue, bus *events.Bus, clk clock.PassiveClock, log *slog.Logger) *ScheduleEvaluator {
	return &ScheduleEvaluator{store: st, queue: q, bus: bus, clock: clk, log: log}
}

// Evaluate runs one round and reports how many edges it applied. A pool
// that fails is reported in the error and retried next round; the others
// are still evaluated.
func (e *ScheduleEvaluator) Evaluate(ctx context.Context) (int, error) {
	pools, err := e.store.ScheduledPools(ctx)
	if err != nil {
		return 0, fmt.Errorf("schedule evaluator: %w", err)
	}
	now := e.clock.Now()
	applied := 0
	var errs []error
	for _, p := range pools {
		edge, ok, err := decideEdge(p, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule evaluator: pool %s: %w", p.ID, err))
			continue
		}
		if !ok {
			continue
		}
		pool, won, changed, err := e.store.ApplyScheduleEdge(ctx, edge)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule evaluator: pool %s: %w", p.ID, err))
			continue
		}
		if !won {
			// Another replica applied it, or a manual pause or a window
			// change committed since the read: the next round decides again.
			continue
		}
		applied++
		e.publish(ctx, pool, edge.At, changed)
	}
	return applied, errors.Join(errs...)
}

// publish makes a committed edge instant: the Redis pause key (written even
// when the status did not change, which repairs a key that drifted) and,
// when the status changed, the same pool event a manual pause publishes.
func (e *ScheduleEvaluator) publish(ctx context.Context, p store.Pool, edge time.Time, changed bool) {
	paused := p.Status == apiv1.PoolPaused
	if err := e.queue.SetPaused(ctx, p.ID, paused); err != nil {
		e.log.WarnContext(ctx, "schedule edge recorded but its Redis pause key not changed; the queue reconciler fixes it within its period, check Redis",
			slog.String("pool_id", p.ID), slog.String("status", p.Status), slog.Any("error", err))
	}
	e.log.InfoContext(ctx, "pause window edge applied", slog.String("pool_id", p.ID), slog.Time("edge", edge),
		slog.String("status", p.Status), slog.Bool("changed", changed))
	if !changed {
		return
	}
	typ := apiv1.EventPoolResumed
	if paused {
		typ = apiv1.EventPoolPaused
	}
	// Data says the schedule did it, and which edge; a manual pause's event
	// has none.
	data := map[string]any{"by": apiv1.PausedBySchedule, "edge": edge.UTC()}
	if err := e.bus.Emit(ctx, events.Event{Type: typ, OrgID: p.OrgID, PoolID: p.ID, Data: data}); err != nil {
		e.log.WarnContext(ctx, "event not published; live subscribers miss it, check redis",
			slog.String("event", typ), slog.String("pool_id", p.ID), slog.Any("error", err))
	}
}

// decideEdge says what the evaluator does to pool p at now: the edge to
// apply and the state it gives, or false when nothing is due.
//
// Windows not yet evaluated (new, or changed since: their last applied
// edge is NULL) take the schedule's current state: inside a window the
// pool pauses now; outside, a pool the schedule paused resumes, and a pool
// paused by hand stays paused, since the edge that would resume it happened
// before these windows existed. After that, each new edge applies: a start
// pauses, an end resumes (unless another window is still active), whatever
// a manual pause or resume did since the previous edge.
func decideEdge(p store.ScheduledPool, now time.Time) (store.ScheduleEdge, bool, error) {
	wire := store.PoolSettings{PauseWindows: p.PauseWindows}.Wire().PauseWindows
	ws, perrs := schedule.Parse(wire)
	if perrs != nil {
		// Validated when stored: a zone this binary's tzdata lacks, say.
		return store.ScheduleEdge{}, false, fmt.Errorf("its pause windows do not parse; fix them with PATCH /v1/pools/%s: %w", p.ID, perrs.Prefixed("pause_windows"))
	}
	paused, schedulePaused := apiv1.PoolPaused, apiv1.PausedBySchedule
	pause := store.ScheduleEdge{Read: p, Status: paused, PausedBy: &schedulePaused}
	resume := store.ScheduleEdge{Read: p, Status: apiv1.PoolActive}
	last, hasLast := ws.Last(now)
	if p.ScheduleEdgeAppliedAt == nil {
		at := now
		if hasLast {
			at = last.At
		}
		var e store.ScheduleEdge
		switch {
		case ws.Active(now):
			e = pause
		case p.PausedBy != nil && *p.PausedBy == apiv1.PausedBySchedule:
			e = resume
		default:
			e = store.ScheduleEdge{Read: p, Status: p.Status, PausedBy: p.PausedBy}
		}
		e.At = at
		return e, true, nil
	}
	applied := *p.ScheduleEdgeAppliedAt
	if !ws.Due(applied, now) || !hasLast || !last.At.After(applied) {
		return store.ScheduleEdge{}, false, nil
	}
	e := resume
	if last.Action == schedule.Pause {
		e = pause
	}
	e.At = last.At
	return e, true, nil
}
