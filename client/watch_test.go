package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

// watch runs WatchEvents in the background, handing events to the test.
func watch(t *testing.T, ctx context.Context, c *client.Client, ids ...string) (<-chan client.Event, <-chan error) {
	t.Helper()
	evs := make(chan client.Event, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- c.WatchEvents(ctx, ids, func(ev client.Event) error { evs <- ev; return nil })
	}()
	return evs, errc
}

func result(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("WatchEvents did not return")
		return nil
	}
}

// TestWatchEventsStreams follows two jobs over the WebSocket: the current
// state first, then the server's events as they happen, until both end.
func TestWatchEventsStreams(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{})
	// A resync far away: everything after the first look must come from the stream.
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{ResyncInterval: time.Hour})
	a, b := urlJob(t, c), urlJob(t, c)
	evs, errc := watch(t, t.Context(), c, a.ID, b.ID)

	first := take(t, evs, 2)
	assert.ElementsMatch(t, []string{a.ID + " job.queued", b.ID + " job.queued"}, types(first))
	srv.WaitSubscribers(t, 1)

	runA := srv.Claim(t, a.ID)
	runA.Progress(0.25)
	runA.Complete(nil)
	got := take(t, evs, 3)
	assert.Equal(t, []string{a.ID + " job.started", a.ID + " job.progress", a.ID + " job.completed"}, types(got))
	p, ok := got[1].Progress()
	assert.True(t, ok)
	assert.InDelta(t, 0.25, p, 1e-6)
	require.NotNil(t, got[2].Job, "a final event carries the finished job")
	assert.Equal(t, client.JobCompleted, got[2].Job.Status)

	runB := srv.Claim(t, b.ID)
	runB.Fail("ffmpeg exited 1: moov atom not found")
	got = append(got, take(t, evs, 2)...)
	assert.Equal(t, []string{b.ID + " job.started", b.ID + " job.failed"}, types(got[3:]))
	assert.Equal(t, "ffmpeg exited 1: moov atom not found", got[4].ErrorMessage())
	assert.True(t, got[4].Final())
	for _, ev := range got {
		assert.NotEmpty(t, ev.ID, "%s came from the stream", ev.Type)
	}
	require.NoError(t, result(t, errc))
	assert.Equal(t, 0, len(evs), "nothing after the end")
}

// TestWatchEventsPolls follows jobs on a server without /ws, reading them
// on every tick of an injected clock.
func TestWatchEventsPolls(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	clock := testingclock.NewFakeClock(time.Now())
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{Clock: fakeClock{clock}, PollInterval: time.Second})
	a, b := urlJob(t, c), urlJob(t, c)
	evs, errc := watch(t, t.Context(), c, a.ID, b.ID)

	assert.ElementsMatch(t, []string{a.ID + " job.queued", b.ID + " job.queued"}, types(take(t, evs, 2)))

	runA := srv.Claim(t, a.ID)
	runA.Progress(0.5)
	clock.Step(time.Second)
	got := take(t, evs, 2)
	assert.Equal(t, []string{a.ID + " job.started", a.ID + " job.progress"}, types(got))
	p, _ := got[1].Progress()
	assert.InDelta(t, 0.5, p, 1e-6)

	runA.Complete(nil)
	runB := srv.Claim(t, b.ID)
	runB.Fail("input unreadable")
	clock.Step(time.Second)
	// Polling sees where each job is now: b's start and failure fell
	// between two looks, so only the failure shows.
	got = take(t, evs, 2)
	assert.ElementsMatch(t, []string{a.ID + " job.completed", b.ID + " job.failed"}, types(got))
	for _, ev := range got {
		if ev.Type == client.EventFailed {
			assert.Equal(t, "input unreadable", ev.ErrorMessage())
		}
		assert.Empty(t, ev.ID, "derived events have no server id")
		require.NotNil(t, ev.Job)
	}
	require.NoError(t, result(t, errc))
}

// TestWatchEventsFinishedJob: a job that ended before the watch reports its
// end at once, on either path.
func TestWatchEventsFinishedJob(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]apiservertest.Options{"stream": {}, "poll": {NoWebSocket: true}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := apiservertest.New(t, opts)
			c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
			j := urlJob(t, c)
			_, err := c.CancelJob(t.Context(), j.ID)
			require.NoError(t, err)
			evs, errc := watch(t, t.Context(), c, j.ID, j.ID)
			require.NoError(t, result(t, errc))
			got := take(t, evs, 1)
			assert.Equal(t, []string{j.ID + " job.cancelled"}, types(got))
		})
	}
}

func TestWatchEventsErrors(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})

	missing := uuid.NewString()
	err := c.WatchEvents(t.Context(), []string{missing}, func(client.Event) error { return nil })
	assert.True(t, client.IsNotFound(err), "%v", err)
	assert.Contains(t, err.Error(), "watch job "+missing+": 404 not-found: job not found")

	err = c.WatchEvents(t.Context(), []string{"not-an-id"}, func(client.Event) error { return nil })
	assert.True(t, client.IsNotFound(err), "%v", err)

	err = c.WatchEvents(t.Context(), nil, func(client.Event) error { return nil })
	assert.ErrorContains(t, err, "at least one job id")

	bad := newClient(t, srv.URL, "mfk_revoked", client.Config{})
	err = bad.WatchEvents(t.Context(), []string{missing}, func(client.Event) error { return nil })
	assert.Equal(t, 401, client.StatusOf(err), "%v", err)

	// The caller stops a watch with its context.
	j := urlJob(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	evs, errc := watch(t, ctx, c, j.ID)
	take(t, evs, 1)
	cancel()
	assert.ErrorIs(t, result(t, errc), context.Canceled)
}

// flakyServer answers GET /v1/jobs/{id} from a script of (status, job
// status) steps, one per request (the last repeats), has no /ws, and
// reports every job read on hits once it has answered it; stop closes the
// server, returning once every request it took has been answered and
// reported.
func flakyServer(t *testing.T, id string, script []flakyStep) (url string, hits <-chan int, stop func()) {
	t.Helper()
	ch := make(chan int, 100)
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jobs/"+id {
			http.NotFound(w, r)
			return
		}
		step := script[min(n, len(script)-1)]
		n++
		defer func() { ch <- n }()
		if step.code != http.StatusOK {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(step.code)
			_, _ = io.WriteString(w, `{"type":"urn:mpegflow:problem:unavailable","title":"down","status":`+strconv.Itoa(step.code)+`,"detail":"restarting"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(client.Job{ID: id, Status: step.status, PoolID: "default"})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch, srv.Close
}

type flakyStep struct {
	code   int
	status string
}

// TestWatchRidesOutAnOutage: once a watch has started, a server that is
// briefly down (a restarting dev stack) does not end it; one that stays
// down past WatchOutage does.
func TestWatchRidesOutAnOutage(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	down := flakyStep{code: http.StatusServiceUnavailable}
	for name, tc := range map[string]struct {
		script   []flakyStep
		minLooks int
		wantErr  string
		want     []string
	}{
		"brief outage": {
			script:   []flakyStep{{200, client.JobRunning}, down, down, {200, client.JobCompleted}},
			minLooks: 4, want: []string{id + " job.started", id + " job.completed"},
		},
		"lasting outage": {
			script:   []flakyStep{{200, client.JobRunning}, down},
			minLooks: 3, want: []string{id + " job.started"},
			wantErr: "watch job " + id + ": 503 unavailable: restarting (still failing after 2s)",
		},
		"down from the start": {
			script: []flakyStep{down}, minLooks: 1, want: []string{}, wantErr: "watch job " + id + ": 503 unavailable: restarting",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, hits, stop := flakyServer(t, id, tc.script)
			clock := testingclock.NewFakeClock(time.Now())
			c := newClient(t, url, "mfk_x", client.Config{Clock: fakeClock{clock}, PollInterval: time.Second, WatchOutage: 2 * time.Second})
			evs, errc := watch(t, t.Context(), c, id)
			// Every look is followed by one poll interval, until the watch ends.
			looks := 0
			var err error
		loop:
			for {
				select {
				case looks = <-hits:
					clock.Step(time.Second)
				case err = <-errc:
					break loop
				case <-time.After(20 * time.Second):
					t.Fatalf("the watch stalled after %d looks", looks)
				}
			}
			// The server reports a look after answering it, so the watch
			// may end before its last look is reported: count them all.
			stop()
			for len(hits) > 0 {
				looks = <-hits
			}
			assert.GreaterOrEqual(t, looks, tc.minLooks)
			assert.Less(t, looks, 10, "an outage of WatchOutage (two intervals) ends the watch soon")
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
			} else {
				assert.NoError(t, err)
			}
			var got []client.Event
			for len(evs) > 0 {
				got = append(got, <-evs)
			}
			assert.Equal(t, tc.want, types(got))
		})
	}
}
