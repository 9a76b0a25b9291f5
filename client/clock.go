package client

import "time"

// Clock is the time source that paces a watch's polling and resyncs. Tests
// inject a fake one; it is the client's own small interface so that the
// SDK links no Kubernetes package (k8s.io/utils/clock's fake clock fits it
// through a one-method adapter).
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks on C until stopped, as time.Ticker does.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
