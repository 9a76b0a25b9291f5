// Package spare runs functions on goroutines it keeps for the next one.
//
// A goroutine starts with a small stack and, as its calls go deeper,
// doubles it, copying the whole stack each time. The control plane's hot
// paths hand work to fresh goroutines thousands of times a second (a
// Complete's next claim; a group commit's batch handed on, or spilled to
// a second place), and each ran deep (pgx, go-redis, gRPC), so each grew
// its stack afresh: with 16 pods claiming and completing, runtime.newstack
// took 0.16-0.37 s of the coordinator's CPU profile a 20,000 jobs
// (0.02-0.08 s with kept goroutines; docs/benchmarks.md). A
// goroutine kept for the next function finds the stack the last one grew
// (the runtime shrinks an idle goroutine's stack only at a collection).
package spare

import (
	"context"
	"runtime/pprof"
	"sync/atomic"
	"time"
)

// Idle is how long a goroutine of New waits for work before it ends: long
// beside the gaps between a hot path's hand-offs under load, short enough
// that a burst's goroutines end soon after it (and before a test's leak
// check gives up waiting for them).
const Idle = 100 * time.Millisecond

// Goroutines runs functions on goroutines that, done with one, wait up to
// their idle time for the next before they end. The wait is on the real
// clock, not an injected one: it bounds how long a goroutine outlives its
// work, which a test's fake clock would make for ever.
type Goroutines struct {
	idle time.Duration
	work chan task
	// alive counts the goroutines, waiting those between two functions
	// (for the tests).
	alive, waiting atomic.Int32
}

// New returns Goroutines whose goroutines wait idle for work.
func New(idle time.Duration) *Goroutines {
	return &Goroutines{idle: idle, work: make(chan task)}
}

// task is a function and the context whose profiler labels it runs with.
type task struct {
	ctx context.Context
	f   func()
}

// Go runs f on a goroutine waiting for work, or on a new one if none is,
// with ctx's profiler labels (runtime/pprof), as the caller's goroutine
// started for it would have had its creator's: a kept goroutine serves
// callers of every kind, and a profile tells their work apart by label.
func (g *Goroutines) Go(ctx context.Context, f func()) {
	t := task{ctx: ctx, f: f}
	select {
	case g.work <- t:
	default:
		g.alive.Add(1)
		go g.run(t)
	}
}

// run runs w, then what Go hands it, until none comes for g.idle.
func (g *Goroutines) run(w task) {
	defer g.alive.Add(-1)
	idle := time.NewTimer(g.idle)
	defer idle.Stop()
	for {
		pprof.SetGoroutineLabels(w.ctx)
		w.f()
		pprof.SetGoroutineLabels(context.Background())
		w = task{} // an idle goroutine holds no caller's function or context
		idle.Reset(g.idle)
		g.waiting.Add(1)
		select {
		case w = <-g.work:
			g.waiting.Add(-1)
		case <-idle.C:
			g.waiting.Add(-1)
			return
		}
	}
}
