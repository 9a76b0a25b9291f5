// Package groupcommit coalesces concurrent calls of one kind into batches,
// each run as one operation (one statement, one pipeline), every caller
// still getting its own answer. The coordinator batches claims,
// completions and heartbeats with it; the event bus its publishes.
package groupcommit

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mpegflow/mpegflow/internal/spare"
)

// goroutines runs the groups' batches handed on to a goroutine of their
// own (a caller whose call is done leaves the pending ones, a spill opens
// a second place): kept goroutines, whose stacks the last batch grew
// (package spare).
var goroutines = spare.New(spare.Idle)

// Group coalesces concurrent calls of one kind into batches, each run as
// one statement (or one pipeline) by run, every caller still getting its
// own result.
//
// The window adapts to load: a call that finds fewer than inFlight
// batches running starts one (alone, under light load: no added latency);
// calls that arrive while inFlight batches run wait for the next, which
// takes everything pending (up to maxBatch). So a batch holds what arrived
// during the previous statement, and the busier the coordinator, the
// larger the batches and the fewer the statements.
//
// With a linger (Linger), a batch about to start with fewer calls than the
// recent batches held waits a little for the usual company: until as many
// calls as the recent average are pending, or for half the recent
// statements' run time, at most the linger. Without it, callers released
// together by one batch (a batch of completions whose pods all claim next)
// arrive at the next group one by one, and the first goes alone: batches
// alternate between one call and the rest, and the lone ones cost a whole
// statement each. Under light load the recent average is one call and
// nothing ever waits.
//
// With a gather window (Gather), meant for calls nobody waits on (a
// completion, not a claim), the group trades latency for fewer
// statements once calls come often: see Gather.
//
// With a spill delay (Spill), a group of several places runs one batch
// at a time while batches are quick, and opens another place only for
// calls that waited the delay: see Spill.
//
// Two calls with a key in common (keys; nil: none clash) never share a batch: the later one
// waits for the next. A statement is one implicit transaction, so when a
// batch fails as a whole (a deadlock with another coordinator's batch, a
// lost connection) nothing of it applied, and each of its calls is run
// again alone: no call fails for another's sake. A call whose context ends before its batch starts is
// dropped from it and gets the context's error, unless it is the call
// whose caller runs the batch (it stays in while the batch lingers or
// gathers); once its batch runs, its
// outcome stands (the statement is not cancelled for one caller), exactly
// as a reply lost on the wire after a commit.
type Group[Req, Res any] struct {
	kind     string // for logs: claim, complete
	log      *slog.Logger
	run      func(ctx context.Context, reqs []Req) ([]Res, error)
	keys     func(Req) []string
	maxBatch int
	inFlight int
	timeout  time.Duration
	sizes    prometheus.Observer
	// waits and runs, when not nil, observe each call's wait for its
	// batch and each batch's run time (Timed).
	waits, runs prometheus.Observer

	// linger bounds the wait for company (0: none); now and after are the
	// clock it waits and measures statements by.
	linger time.Duration
	now    func() time.Time
	after  func(time.Duration) <-chan time.Time

	// gather is the longest a batch waits while calls keep coming (0:
	// it never does); see Gather.
	gather time.Duration
	worth  func() bool

	// spill is how long pending calls wait before a place beyond the
	// first opens for them (0: places open as calls come); see Spill.
	spill time.Duration

	mu      sync.Mutex
	pending []*groupCall[Req, Res]
	running int
	// avgGap is the moving average of the time between two calls'
	// arrivals, and lastCall the newest arrival; both kept only with a
	// gather window.
	avgGap   time.Duration
	lastCall time.Time
	// avgSize and avgRun are moving averages of recent batches' sizes and
	// run times; joined, while a batch lingers, is closed (and cleared) by
	// the next call to arrive.
	avgSize float64
	avgRun  time.Duration
	joined  chan struct{}
	// spilling is set while a goroutine waits to open a place for the
	// pending calls (spillAfter).
	spilling bool
	// gathering counts the places whose next batch gathers: it takes
	// what is pending when it goes, so no place is opened for those calls
	// (spillAfter). A linger, shorter than a spill delay, does not count:
	// calls that have waited the delay go in a place of their own rather
	// than linger further.
	gathering int
}

// recentWeight is the weight of the newest batch in avgSize and avgRun.
const recentWeight = 0.25

// groupCall is one caller's request and, once done is closed, its answer:
// the i-th of its batch's answers. The call points into the batch's
// answers rather than holding a copy, so that it stays small when an
// answer is large (a job).
type groupCall[Req, Res any] struct {
	req   Req
	out   *answers[Res]
	i     int
	taken bool      // in a running batch; guarded by Group.mu
	at    time.Time // its arrival, with a gather window, a spill delay or Timed only
	done  chan struct{}
}

// answers are a batch's results and errors, one of each a call.
type answers[Res any] struct {
	res  []Res
	errs []error
}

// answer is c's result and error; c is done.
func (c *groupCall[Req, Res]) answer() (Res, error) { return c.out.res[c.i], c.out.errs[c.i] }

// New returns a group for run. kind names it in logs; maxBatch (≥ 1) caps
// a batch, inFlight (≥ 1) the batches running at once (1 keeps batches in
// the order their calls arrived); timeout bounds one batch's run, which is
// detached from its callers' contexts. sizes, when not nil, observes each
// batch's size. run returns a new slice each time: its callers read their
// answers from it after the batch is done.
func New[Req, Res any](kind string, log *slog.Logger, run func(context.Context, []Req) ([]Res, error), keys func(Req) []string,
	maxBatch, inFlight int, timeout time.Duration, sizes prometheus.Observer) *Group[Req, Res] {
	return &Group[Req, Res]{kind: kind, log: log, run: run, keys: keys, maxBatch: max(1, maxBatch), inFlight: max(1, inFlight),
		timeout: timeout, sizes: sizes, now: time.Now, after: time.After, avgSize: 1}
}

// Linger lets a batch wait up to d for as many calls as recent batches
// held (see Group); 0 (the default) never waits. Set it before the first
// Do.
func (g *Group[Req, Res]) Linger(d time.Duration) *Group[Req, Res] {
	g.linger = max(d, 0)
	return g
}

// Gather lets a batch wait, once calls arrive at least gatherCalls to the
// window d apart on average, while more keep coming: until maxBatch calls
// are pending, or none has come for gatherQuiet times the usual gap, or
// its oldest call has waited d. Each statement then carries many calls
// (at 1,000 completions a second and d = 10 ms, about ten), which saves
// the database more than the wait costs a caller nobody waits on. Under
// light load (calls further apart) nothing waits. worth, when not nil, is
// asked before a batch waits and each time it wakes (its timer, a full
// batch, Recheck), and the batch goes once it says no: the coordinator
// gathers completions only while claims wait for work, and calls Recheck
// when the last waiting claim leaves, so that a pod's next claim does not
// wait on its completion while jobs wait for pods. worth is called with
// the group's lock held: it must be cheap and must not call the group.
// With more than one batch in flight, several may gather at once over the
// same pending calls (the first to go takes them); the coordinator runs
// one. Gather replaces the linger; 0 (the default) never gathers. Set it
// before the first Do.
func (g *Group[Req, Res]) Gather(d time.Duration, worth func() bool) *Group[Req, Res] {
	g.gather, g.worth = max(d, 0), worth
	g.avgGap = g.gather // no history yet: as under light load
	return g
}

// Spill keeps a group of more than one place in flight to one batch at a
// time while batches are quick: a further place opens only once the
// oldest pending call has waited d for one, and not while a batch gathers
// (that batch takes the pending calls when it goes). A batch
// held up (a statement waiting on a row lock) then delays the others by d
// at most, as with several places, while under load each batch takes
// everything that came during the one before, as with one place: larger
// batches, fewer statements (claims and submissions at 1,000 jobs/s:
// Postgres's CPU a job 3–7 % lower). 0 (the default) opens places as
// calls come. Set it before the first Do.
func (g *Group[Req, Res]) Spill(d time.Duration) *Group[Req, Res] {
	g.spill = max(d, 0)
	return g
}

// Timed has waits observe, in seconds, how long each call waited for its
// batch to start (lingering or gathering for company, or for a running
// batch to end), and runs how long each batch ran (its statement or
// round trip, and the calls run again alone when it failed as a whole).
// Their sum is what the group adds to a call over the operation itself:
// the figures an operator reads a slow call by. Either may be nil. Set it
// before the first Do.
func (g *Group[Req, Res]) Timed(waits, runs prometheus.Observer) *Group[Req, Res] {
	g.waits, g.runs = waits, runs
	return g
}

// Recheck wakes a gathering batch to ask worth again (see Gather).
func (g *Group[Req, Res]) Recheck() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gather > 0 {
		g.wakeJoined()
	}
}

// A batch gathers when calls have come at least gatherCalls to the window
// apart, and stops when none has come for gatherQuiet times the usual
// gap.
const (
	gatherCalls = 4
	gatherQuiet = 4
)

// Do runs req in the next batch and returns its own result.
func (g *Group[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	c := &groupCall[Req, Res]{req: req, done: make(chan struct{})}
	g.mu.Lock()
	if g.gather > 0 {
		c.at = g.now()
		if !g.lastCall.IsZero() {
			g.avgGap += time.Duration(recentWeight * float64(c.at.Sub(g.lastCall)-g.avgGap))
		}
		g.lastCall = c.at
	}
	if g.gather == 0 && (g.spill > 0 || g.waits != nil) {
		c.at = g.now()
	}
	g.pending = append(g.pending, c)
	// A gathering batch wakes at its own time (it reads lastCall then),
	// unless the batch is full: one timer a batch, not a wake a call.
	if g.gather == 0 || len(g.pending) >= g.maxBatch {
		g.wakeJoined()
	}
	start := g.running < g.inFlight && (g.spill == 0 || g.running == 0)
	if start {
		g.running++
	} else {
		g.armSpill(ctx)
	}
	g.mu.Unlock()
	if start {
		// The caller runs the batches itself until its own is done (no
		// goroutine to start under light load), then hands what is
		// pending to a goroutine of the group.
		g.flush(context.WithoutCancel(ctx), c)
		<-c.done // another place's batch may have taken it
		return c.answer()
	}
	select {
	case <-c.done:
		return c.answer()
	case <-ctx.Done():
	}
	g.mu.Lock()
	if !c.taken {
		for i, p := range g.pending {
			if p == c {
				g.pending = append(g.pending[:i], g.pending[i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		var zero Res
		return zero, ctx.Err()
	}
	g.mu.Unlock()
	<-c.done
	return c.answer()
}

// Pending is how many calls wait for a batch to start.
func (g *Group[Req, Res]) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// flush runs batches until nothing is pending, holding one of the
// group's inFlight places. Run by a caller (mine), it returns once that
// caller's call is done (in its batch or another place's), leaving the
// place to a goroutine if calls are pending.
func (g *Group[Req, Res]) flush(ctx context.Context, mine *groupCall[Req, Res]) {
	for {
		g.mu.Lock()
		g.waitForCompany()
		batch := g.take()
		if len(batch) == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		if len(g.pending) > 0 { // calls the batch could not take (full, or a key in common)
			g.armSpill(ctx)
		}
		g.mu.Unlock()
		reqs := make([]Req, len(batch))
		for i, c := range batch {
			reqs[i] = c.req
		}
		if g.sizes != nil {
			g.sizes.Observe(float64(len(reqs)))
		}
		began := g.now()
		if g.waits != nil {
			for _, c := range batch {
				g.waits.Observe(began.Sub(c.at).Seconds())
			}
		}
		res, errs := g.runBatch(ctx, reqs)
		ran := g.now().Sub(began)
		if g.runs != nil {
			g.runs.Observe(ran.Seconds())
		}
		g.mu.Lock()
		g.avgSize += recentWeight * (float64(len(reqs)) - g.avgSize)
		g.avgRun += time.Duration(recentWeight * float64(ran-g.avgRun))
		g.mu.Unlock()
		out := &answers[Res]{res: res, errs: errs}
		for i, c := range batch {
			c.out, c.i = out, i
			close(c.done)
		}
		if mine != nil && isDone(mine) {
			g.mu.Lock()
			if len(g.pending) == 0 {
				g.running--
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
			goroutines.Go(ctx, func() { g.flush(ctx, nil) })
			return
		}
	}
}

// armSpill starts the wait for a place beyond the first for the pending
// calls (spillAfter), if the group spills, a place is free, no such wait
// runs yet, and no batch gathers (it will take the calls when it goes, so
// that a place opened meanwhile would only gather them again).
// Called with mu held and something pending.
func (g *Group[Req, Res]) armSpill(ctx context.Context) {
	if g.spill == 0 || g.running >= g.inFlight || g.spilling || g.gathering > 0 {
		return
	}
	g.spilling = true
	ctx, timer := context.WithoutCancel(ctx), g.after(g.spill-g.now().Sub(g.pending[0].at))
	goroutines.Go(ctx, func() { g.spillAfter(ctx, timer) })
}

// spillAfter opens a place for the pending calls once timer fires, if a
// place is free and the oldest has waited the spill delay; if it has not
// yet (the calls it was armed for were taken meanwhile), it waits for the
// oldest's turn. It ends when nothing is pending, every place is taken
// (the running batches take what is pending when they end), or a batch
// gathers (it takes them when it goes; what it leaves arms the wait
// again).
func (g *Group[Req, Res]) spillAfter(ctx context.Context, timer <-chan time.Time) {
	for {
		<-timer
		g.mu.Lock()
		if len(g.pending) == 0 || g.running >= g.inFlight || g.gathering > 0 {
			g.spilling = false
			g.mu.Unlock()
			return
		}
		if wait := g.spill - g.now().Sub(g.pending[0].at); wait > 0 {
			timer = g.after(wait)
			g.mu.Unlock()
			continue
		}
		g.running++
		g.spilling = false
		g.mu.Unlock()
		g.flush(ctx, nil)
		return
	}
}

// isDone reports whether c has its answer.
func isDone[Req, Res any](c *groupCall[Req, Res]) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitForCompany lingers before a batch starts while fewer calls are
// pending than recent batches held: until enough have come, or for half
// the recent run time, at most the linger. Called, and returns, with mu
// held.
func (g *Group[Req, Res]) waitForCompany() {
	if g.gather > 0 {
		g.gatherCompany()
		return
	}
	want := min(int(g.avgSize+0.5), g.maxBatch)
	wait := min(g.linger, g.avgRun/2)
	if len(g.pending) == 0 || len(g.pending) >= want || wait <= 0 {
		return
	}
	deadline := g.after(wait)
	for len(g.pending) > 0 && len(g.pending) < want {
		if !g.waitJoined(deadline) {
			return
		}
	}
}

// gatherCompany waits, with a gather window, while calls keep coming
// (see Gather). Called, and returns, with mu held.
func (g *Group[Req, Res]) gatherCompany() {
	if len(g.pending) == 0 || g.avgGap*gatherCalls > g.gather {
		return
	}
	g.gathering++
	defer func() { g.gathering-- }()
	deadline := g.pending[0].at.Add(g.gather)
	for len(g.pending) > 0 && len(g.pending) < g.maxBatch && (g.worth == nil || g.worth()) {
		now, until := g.now(), g.lastCall.Add(gatherQuiet*g.avgGap)
		if deadline.Before(until) {
			until = deadline
		}
		if !now.Before(until) {
			return
		}
		g.waitJoined(g.after(until.Sub(now)))
	}
}

// waitJoined releases mu until a waiting batch is woken (wakeJoined) or
// timer fires, and takes it again; it reports whether it was woken. Called
// with mu held.
func (g *Group[Req, Res]) waitJoined(timer <-chan time.Time) (woken bool) {
	if g.joined == nil {
		g.joined = make(chan struct{})
	}
	joined := g.joined
	g.mu.Unlock()
	select {
	case <-joined:
		woken = true
	case <-timer:
	}
	g.mu.Lock()
	return woken
}

// wakeJoined wakes the batch waiting for company, if one is. Called with
// mu held.
func (g *Group[Req, Res]) wakeJoined() {
	if g.joined != nil {
		close(g.joined)
		g.joined = nil
	}
}

// runBatch runs one batch and gives each call its result or error; if
// the statement fails as a whole, each call is run again alone.
func (g *Group[Req, Res]) runBatch(ctx context.Context, reqs []Req) ([]Res, []error) {
	errs := make([]error, len(reqs))
	res, err := g.runSafely(ctx, reqs)
	switch {
	case err == nil:
		return res, errs
	case len(reqs) == 1:
		errs[0] = err
		return make([]Res, 1), errs
	}
	g.log.WarnContext(ctx, "a batch failed as one statement; running each call alone (if this repeats, check Postgres)",
		slog.String("kind", g.kind), slog.Int("calls", len(reqs)), slog.Any("error", err))
	res = make([]Res, len(reqs))
	for i, r := range reqs {
		one, errs1 := g.runBatch(ctx, []Req{r})
		res[i], errs[i] = one[0], errs1[0]
	}
	return res, errs
}

// runSafely runs one batch under the group's timeout; a panic in run
// (which runs on the group's goroutine, out of reach of any handler's
// recovery) is the batch's error, not the process's end.
func (g *Group[Req, Res]) runSafely(ctx context.Context, reqs []Req) (res []Res, err error) {
	bctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			g.log.ErrorContext(ctx, "a batch panicked", slog.String("kind", g.kind), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			res, err = nil, fmt.Errorf("%s batch: panic: %v", g.kind, p)
		}
	}()
	res, err = g.run(bctx, reqs)
	if err == nil && len(res) != len(reqs) {
		return nil, fmt.Errorf("%s batch: %d answers for %d calls", g.kind, len(res), len(reqs))
	}
	return res, err
}

// take removes the next batch from pending, oldest first: up to maxBatch
// calls with no key in common. The calls it skips keep their order.
// Called with mu held.
func (g *Group[Req, Res]) take() []*groupCall[Req, Res] {
	if len(g.pending) == 0 {
		return nil
	}
	var (
		batch []*groupCall[Req, Res]
		rest  = g.pending[:0]
		seen  = make(map[string]struct{})
	)
	for _, c := range g.pending {
		var keys []string
		if g.keys != nil {
			keys = g.keys(c.req)
		}
		if len(batch) == g.maxBatch || slices.ContainsFunc(keys, func(k string) bool { _, ok := seen[k]; return ok }) {
			rest = append(rest, c)
			continue
		}
		for _, k := range keys {
			seen[k] = struct{}{}
		}
		c.taken = true
		batch = append(batch, c)
	}
	clear(g.pending[len(rest):])
	g.pending = rest
	return batch
}
