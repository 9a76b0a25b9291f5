package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Action is what an edge does to a pool.
type Action string

// The two actions of an edge.
const (
	Pause  Action = "pause"
	Resume Action = "resume"
)

// Edge is one instant at which a window starts or ends, and what the pool
// is from then on: paused when any window is active at that instant,
// running otherwise. An edge that does not change the schedule's state (a
// second window starting inside the first) is still an edge: it ends any
// manual override, as every edge does.
type Edge struct {
	At     time.Time
	Action Action
}

// lookbacks are how far back prev searches, shortest first: a search costs
// one cron step per firing inside the lookback, so the first lookback that
// holds a firing keeps the walk short (an every-minute cron walks about two
// steps, a yearly one a few).
var lookbacks = []time.Duration{
	2 * time.Minute, 2 * time.Hour, 49 * time.Hour, 8 * 24 * time.Hour,
	32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 367 * 24 * time.Hour,
}

// prev returns the latest firing of s at or before t; false when s has not
// fired in the last five years (robfig's Next gives up on a schedule that
// never fires, such as February 30, the same way).
func prev(s *cron.SpecSchedule, t time.Time) (time.Time, bool) {
	for _, lb := range lookbacks {
		x := s.Next(t.Add(-lb))
		if x.IsZero() || x.After(t) {
			continue
		}
		for {
			n := s.Next(x)
			if n.IsZero() || n.After(t) {
				return x, true
			}
			x = n
		}
	}
	return time.Time{}, false
}

// Active reports whether t is inside any window: the window's latest start
// at or before t is later than its latest end (a start and an end at the
// same instant end the window).
func (w Windows) Active(t time.Time) bool {
	for _, win := range w.ws {
		s, ok := prev(win.start, t)
		if !ok {
			continue
		}
		if e, ok := prev(win.end, t); !ok || s.After(e) {
			return true
		}
	}
	return false
}

// Last returns the latest edge at or before now; false when no window has
// started or ended in the last five years.
func (w Windows) Last(now time.Time) (Edge, bool) {
	var at time.Time
	for _, win := range w.ws {
		for _, s := range []*cron.SpecSchedule{win.start, win.end} {
			if p, ok := prev(s, now); ok && p.After(at) {
				at = p
			}
		}
	}
	if at.IsZero() {
		return Edge{}, false
	}
	return w.edge(at), true
}

// Next returns the first edge after t; false when there is none (no
// windows, or none fires within five years).
func (w Windows) Next(t time.Time) (Edge, bool) {
	at, ok := w.nextFiring(t)
	if !ok {
		return Edge{}, false
	}
	return w.edge(at), true
}

// Due reports whether an edge lies in (after, now]: the cheap test the
// evaluator runs every round, one cron step per start and end.
func (w Windows) Due(after, now time.Time) bool {
	at, ok := w.nextFiring(after)
	return ok && !at.After(now)
}

func (w Windows) nextFiring(t time.Time) (time.Time, bool) {
	var at time.Time
	for _, win := range w.ws {
		for _, s := range []*cron.SpecSchedule{win.start, win.end} {
			if n := s.Next(t); !n.IsZero() && (at.IsZero() || n.Before(at)) {
				at = n
			}
		}
	}
	return at, !at.IsZero()
}

func (w Windows) edge(at time.Time) Edge {
	e := Edge{At: at.UTC(), Action: Resume}
	if w.Active(at) {
		e.Action = Pause
	}
	return e
}
