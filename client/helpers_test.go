package client_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/client"
)

func newClient(t *testing.T, url, key string, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(url, key, cfg)
	require.NoError(t, err)
	// Closed by the client's side before the test's server stops, whose
	// shutdown can miss a connection that just turned idle (goleak).
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// urlJob submits a job reading a (never fetched) URL with a built-in workflow.
func urlJob(t *testing.T, c *client.Client) client.Job {
	t.Helper()
	j, err := c.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "https://media.example.com/in.mp4"}, Workflow: "mp4-720p"})
	require.NoError(t, err)
	return j
}

// take reads n events or fails after a generous timeout.
func take(t *testing.T, evs <-chan client.Event, n int) []client.Event {
	t.Helper()
	var out []client.Event
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev := <-evs:
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("got %d events, want %d: %+v", len(out), n, out)
		}
	}
	return out
}

// types lists the job id and type of each event, for compact assertions.
func types(evs []client.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.JobID + " " + ev.Type
	}
	return out
}

// fakeClock adapts k8s.io/utils' fake clock to client.Clock, whose
// NewTicker answers the client's own Ticker.
type fakeClock struct{ *testingclock.FakeClock }

func (f fakeClock) NewTicker(d time.Duration) client.Ticker { return f.FakeClock.NewTicker(d) }

// countingClock is a fakeClock that counts the tickers made on it, so a
// test can tell a wait the client has just begun from a ticker that fired
// and is not yet stopped (still a waiter of the fake clock).
type countingClock struct {
	fakeClock
	made *atomic.Int64
}

func (c countingClock) NewTicker(d time.Duration) client.Ticker {
	tk := c.fakeClock.NewTicker(d)
	c.made.Add(1)
	return tk
}
