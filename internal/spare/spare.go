// Package spare runs functions on goroutines it keeps for the next one.
//
// A goroutine starts with a small stack and grows it by copying, twice
// over for each doubling, as its calls go deeper. The control plane's hot
// paths hand work to fresh goroutines thousands of times a second (a
// Complete's next claim; a group commit's batch handed on, or spilled to
// a second place), and each ran deep (pgx, go-redis, gRPC), so each grew
// its stack afresh: with 16 pods claiming and completing, runtime.newstack
// took 0.22-0.37 s of the coordinator's CPU profile a 20,000 jobs. A
// goroutine kept for the next function finds the stack the last one grew
// (the runtime shrinks an idle goroutine's stack only at a collection).
package spare

import (
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
	work chan func()
	// alive counts the goroutines, waiting those between two functions.
	alive, waiting atomic.Int32
}

// New returns Goroutines whose goroutines wait idle for work.
func New(idle time.Duration) *Goroutines {
	return &Goroutines{idle: idle, work: make(chan func())}
}

// Go runs f on a goroutine waiting for work, or on a new one if none is.
func (g *Goroutines) Go(f func()) {
	select {
	case g.work <- f:
	default:
		g.alive.Add(1)
		go g.run(f)
	}
}

// Alive is how many goroutines there are, running or waiting.
func (g *Goroutines) Alive() int { return int(g.alive.Load()) }

// Waiting is how many goroutines wait for work.
func (g *Goroutines) Waiting() int { return int(g.waiting.Load()) }

// run runs f, then what Go hands it, until none comes for g.idle.
func (g *Goroutines) run(f func()) {
	defer g.alive.Add(-1)
	t := time.NewTimer(g.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(g.idle)
		g.waiting.Add(1)
		select {
		case f = <-g.work:
			g.waiting.Add(-1)
		case <-t.C:
			g.waiting.Add(-1)
			return
		}
	}
}
