package client_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/client"
)

// TestRateLimitedCallWaits: a call refused with 429 is sent again, body
// and all, after the answer's Retry-After, until the waits would pass the
// client's RateLimitWait; then the 429 is the call's error.
func TestRateLimitedCallWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		wait       time.Duration
		refusals   int
		retryAfter string
		wantSent   int
		wantWaits  []time.Duration
		wantStatus int           // 0: the call succeeds
		timeout    time.Duration // RequestTimeout, 0: the default
	}{
		{"waits out two refusals", 0, 2, "2", 3, []time.Duration{2 * time.Second, 2 * time.Second}, 0, 0},
		{"no Retry-After waits a second", 0, 1, "", 2, []time.Duration{time.Second}, 0, 0},
		{"an HTTP date counts as none", 0, 1, "Wed, 21 Oct 2015 07:28:00 GMT", 2, []time.Duration{time.Second}, 0, 0},
		{"gives up before passing its budget", 3 * time.Second, 5, "2", 2, []time.Duration{2 * time.Second}, http.StatusTooManyRequests, 0},
		{"a Retry-After over the budget is not waited", 0, 1, "31", 1, nil, http.StatusTooManyRequests, 0},
		{"a Retry-After too large for a duration is not waited", 0, 1, "10000000000", 1, nil, http.StatusTooManyRequests, 0},
		{"a Retry-After too large for a number is not waited", 0, 1, "99999999999999999999", 1, nil, http.StatusTooManyRequests, 0},
		{"a Retry-After past the call's timeout is not waited", 0, 1, "20", 1, nil, http.StatusTooManyRequests, 10 * time.Second},
		{"negative never waits", -1, 1, "1", 1, nil, http.StatusTooManyRequests, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				bodies []string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, string(b))
				n := len(bodies)
				mu.Unlock()
				if n <= tc.refusals {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = io.WriteString(w, `{"type":"urn:mpegflow:problem:rate-limited","title":"Too Many Requests","status":429,"detail":"slow down"}`)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"id":"01936d5e-0000-7000-8000-000000000001","status":"queued"}`)
			}))
			t.Cleanup(srv.Close)
			clock := testingclock.NewFakeClock(time.Now())
			counted := countingClock{fakeClock{clock}, new(atomic.Int64)}
			c := newClient(t, srv.URL, "mfk_x", client.Config{Clock: counted, RateLimitWait: tc.wait, RequestTimeout: tc.timeout})

			type result struct {
				job client.Job
				err error
			}
			done := make(chan result, 1)
			go func() {
				j, err := c.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "https://media.example.com/in.mp4"}, Workflow: "mp4-720p"})
				done <- result{j, err}
			}()
			var (
				waits []time.Duration
				got   result
				began int64 // waits seen to begin
			)
		wait:
			for {
				select {
				case got = <-done:
					break wait
				case <-time.After(10 * time.Millisecond):
				}
				// The call waits on the client's clock. Just short of the
				// wait the answer asked for, nothing is sent again; at it,
				// the call goes on. A wait counts once it has made its
				// ticker: the last one may still be a waiter for a moment
				// after it fired (CI stepped a fired ticker once, and the
				// request it let go looked early).
				if counted.made.Load() > began && clock.HasWaiters() {
					began++
					d := nextWait(tc.retryAfter)
					mu.Lock()
					sent := len(bodies)
					mu.Unlock()
					clock.Step(d - time.Millisecond)
					time.Sleep(20 * time.Millisecond)
					mu.Lock()
					require.Len(t, bodies, sent, "sent again before its Retry-After")
					mu.Unlock()
					require.True(t, clock.HasWaiters())
					waits = append(waits, d)
					clock.Step(time.Millisecond)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Len(t, bodies, tc.wantSent, "requests the server saw")
			for _, b := range bodies[1:] {
				assert.Equal(t, bodies[0], b, "a resent request carries the same body")
			}
			assert.Equal(t, tc.wantWaits, waits)
			if tc.wantStatus == 0 {
				require.NoError(t, got.err)
				assert.Equal(t, "queued", got.job.Status)
				return
			}
			require.Error(t, got.err)
			assert.Equal(t, tc.wantStatus, client.StatusOf(got.err))
			assert.Contains(t, got.err.Error(), "slow down")
		})
	}
}

// nextWait is the wait a Retry-After value asks for, as the client reads it.
func nextWait(retryAfter string) time.Duration {
	if d, err := time.ParseDuration(retryAfter + "s"); err == nil && d >= time.Second {
		return d
	}
	return time.Second
}
