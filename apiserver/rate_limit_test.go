package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/loopback"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
)

// limited is an apiserver replica on the fixture's Postgres, Redis and S3
// whose rate limiter runs on a fake clock.
type limited struct {
	srv   *Server
	f     *fixture
	clock *clocktesting.FakeClock
}

// appProxy is the peer address app.Test reports; trusting it lets a test
// play many clients through X-Forwarded-For.
var appProxy = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}

// limitedReplica builds one more replica of f's API with a limiter on rdb
// (f's Redis when nil) and cfg, its clock set to clk.
func (f *fixture) limitedReplica(t *testing.T, cfg ratelimit.Config, clk *clocktesting.FakeClock, proxies []netip.Prefix, rdb redis.Scripter) limited {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg.Clock = clk
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second // a loaded CI machine must not fail open
	}
	if rdb == nil {
		rdb = f.rdb
	}
	lim, err := ratelimit.New(cfg, rdb, f.queue.Keys(), log)
	require.NoError(t, err)
	hub := runHub(t, events.NewHub(f.rdb, f.queue.Keys().Events(), 16, log))
	srv, err := New(Config{Hub: hub, Guard: testGuard(), Limiter: lim, TrustedProxies: proxies},
		f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), log)
	require.NoError(t, err)
	return limited{srv: srv, f: f, clock: clk}
}

func newClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
}

// get sends GET path with key from client (an X-Forwarded-For entry; "" =
// none) to this replica.
func (l limited) get(t *testing.T, path, key, client string) response {
	t.Helper()
	f := *l.f
	f.srv = l.srv
	var h map[string]string
	if client != "" {
		h = map[string]string{"X-Forwarded-For": client}
	}
	return f.raw(t, "GET", path, key, nil, h)
}

// budget is the three RateLimit fields of a response, -1 when absent.
type budget struct{ Limit, Remaining, Reset int }

func budgetOf(t *testing.T, r response) budget {
	t.Helper()
	n := func(h string) int {
		v := r.Header.Get(h)
		if v == "" {
			return -1
		}
		i, err := strconv.Atoi(v)
		require.NoError(t, err, "%s: %q", h, v)
		return i
	}
	return budget{n(HeaderRateLimitLimit), n(HeaderRateLimitRemaining), n(HeaderRateLimitReset)}
}

var none = budget{-1, -1, -1}

func perSecond(n, burst int) ratelimit.Limit {
	return ratelimit.Limit{Rate: ratelimit.Rate{Tokens: n, Per: time.Second}, Burst: burst}
}

func perMinute(n, burst int) ratelimit.Limit {
	return ratelimit.Limit{Rate: ratelimit.Rate{Tokens: n, Per: time.Minute}, Burst: burst}
}

// TestRateLimitHeadersAndRetryAfter: with a key allowed 20 requests a
// minute (one token per 3 s) and a burst of 2, the budget counts down, the
// third request is refused with 429 problem+json, and Retry-After and
// RateLimit-Reset are the exact waits rounded up to whole seconds, read
// off an injected clock.
func TestRateLimitHeadersAndRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.limitedReplica(t, ratelimit.Config{Key: perMinute(20, 2), Org: perSecond(100, 100)}, newClock(), nil, nil)
	key := f.keys[auth.Viewer]

	r := l.get(t, "/v1/jobs", key, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, budget{Limit: 2, Remaining: 1, Reset: 3}, budgetOf(t, r))
	assert.Empty(t, r.Header.Get("Retry-After"), "only refusals carry Retry-After")
	r = l.get(t, "/v1/jobs", key, "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, budget{Limit: 2, Remaining: 0, Reset: 6}, budgetOf(t, r))

	r = l.get(t, "/v1/jobs", key, "")
	require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
	p := r.problem(t)
	assert.Equal(t, problemPrefix+"rate-limited", p.Type)
	assert.Equal(t, "Too Many Requests", p.Title)
	assert.Equal(t, "this API key sent more requests than its limit (20/m, burst 2); retry after 3 s", p.Detail)
	assert.Equal(t, "3", r.Header.Get("Retry-After"))
	assert.Equal(t, budget{Limit: 2, Remaining: 0, Reset: 6}, budgetOf(t, r))

	l.clock.Step(1500 * time.Millisecond)
	r = l.get(t, "/v1/jobs", key, "")
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "2", r.Header.Get("Retry-After"), "1.5 s rounds up")
	assert.Equal(t, budget{Limit: 2, Remaining: 0, Reset: 5}, budgetOf(t, r), "4.5 s rounds up")

	l.clock.Step(1500 * time.Millisecond)
	r = l.get(t, "/v1/jobs", key, "")
	require.Equal(t, http.StatusOK, r.Status, "a token is back after 3 s: the refusals spent nothing")
	assert.Equal(t, budget{Limit: 2, Remaining: 0, Reset: 6}, budgetOf(t, r))
}

// TestRateLimitReplicasShareOneBudget: two replicas, each with its own
// limiter, and two keys of one organization share the organization's
// budget of 4: requests alternate between replicas and keys, the fifth is
// refused, by whichever replica gets it.
func TestRateLimitReplicasShareOneBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	clk := newClock()
	cfg := ratelimit.Config{Key: perSecond(1, 4), Org: perSecond(1, 4)}
	replicas := []limited{f.limitedReplica(t, cfg, clk, nil, nil), f.limitedReplica(t, cfg, clk, nil, nil)}
	keys := []string{f.keys[auth.Viewer], f.keys[auth.Editor]}
	for i := range 4 {
		r := replicas[i%2].get(t, "/v1/jobs", keys[i/2], "")
		require.Equal(t, http.StatusOK, r.Status, "request %d: %s", i+1, r.Body)
		assert.Equal(t, 3-i, budgetOf(t, r).Remaining, "request %d sees the shared budget", i+1)
	}
	for i, rep := range replicas {
		r := rep.get(t, "/v1/jobs", keys[i], "")
		require.Equal(t, http.StatusTooManyRequests, r.Status, "replica %d", i+1)
		assert.Contains(t, r.problem(t).Detail, "your organization's API keys together")
		assert.Equal(t, "1", r.Header.Get("Retry-After"))
	}
}

// TestRateLimitKeyUnderOrganization: each key's bucket sits under its
// organization's: one key is stopped by its own limit, the next by what the
// organization has left.
func TestRateLimitKeyUnderOrganization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.limitedReplica(t, ratelimit.Config{Key: perSecond(1, 2), Org: perSecond(1, 3)}, newClock(), nil, nil)
	for range 2 {
		require.Equal(t, http.StatusOK, l.get(t, "/v1/jobs", f.keys[auth.Viewer], "").Status)
	}
	r := l.get(t, "/v1/jobs", f.keys[auth.Viewer], "")
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Contains(t, r.problem(t).Detail, "this API key")

	r = l.get(t, "/v1/jobs", f.keys[auth.Editor], "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, budget{Limit: 3, Remaining: 0, Reset: 3}, budgetOf(t, r), "the organization is the budget closest to empty")
	r = l.get(t, "/v1/jobs", f.keys[auth.Editor], "")
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Contains(t, r.problem(t).Detail, "your organization's API keys together")
}

// TestRateLimitOrganizationsAreIndependent: org A exhausting its budget
// never affects org B, which gets its whole burst.
func TestRateLimitOrganizationsAreIndependent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.limitedReplica(t, ratelimit.Config{Key: perSecond(1, 3), Org: perSecond(1, 3)}, newClock(), nil, nil)
	for range 3 {
		require.Equal(t, http.StatusOK, l.get(t, "/v1/jobs", f.keys[auth.Owner], "").Status)
	}
	require.Equal(t, http.StatusTooManyRequests, l.get(t, "/v1/jobs", f.keys[auth.Owner], "").Status)
	for i := range 3 {
		r := l.get(t, "/v1/jobs", f.keyB, "")
		require.Equal(t, http.StatusOK, r.Status, "org B request %d", i+1)
		assert.Equal(t, budget{Limit: 3, Remaining: 2 - i, Reset: i + 1}, budgetOf(t, r))
	}
}

// TestRateLimitFailedAuthenticationsPerClient: behind a trusted proxy,
// invalid keys spend the client address's failure budget (401 shows it);
// once it is empty that address gets 429 for any key, valid or not, while
// other addresses are unaffected. A client cannot escape by writing its own
// X-Forwarded-For; without a trusted proxy the header is ignored.
func TestRateLimitFailedAuthenticationsPerClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := ratelimit.Config{AuthFailure: perMinute(6, 2)}
	bad := tamper(f.keys[auth.Owner])

	t.Run("behind a trusted proxy", func(t *testing.T) {
		l := f.limitedReplica(t, cfg, newClock(), appProxy, nil)
		const mallory, alice = "198.51.100.7", "203.0.113.9"
		r := l.get(t, "/v1/jobs", "", mallory)
		require.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, none, budgetOf(t, r), "no key presented, nothing spent")
		for i := range 2 {
			r := l.get(t, "/v1/jobs", bad, mallory)
			require.Equal(t, http.StatusUnauthorized, r.Status)
			assert.Equal(t, budget{Limit: 2, Remaining: 1 - i, Reset: 10 * (i + 1)}, budgetOf(t, r))
		}
		r = l.get(t, "/v1/jobs", bad, mallory)
		require.Equal(t, http.StatusTooManyRequests, r.Status)
		assert.Equal(t, "10", r.Header.Get("Retry-After"))
		assert.Equal(t, "too many requests with invalid API keys came from your address (6/m, burst 2) and it may present no key, valid or not, for now; retry after 10 s", r.problem(t).Detail)

		r = l.get(t, "/v1/jobs", f.keys[auth.Owner], mallory)
		require.Equal(t, http.StatusTooManyRequests, r.Status, "a valid key from a locked-out address is refused too")
		r = l.get(t, "/v1/jobs", f.keys[auth.Owner], alice+", "+mallory)
		require.Equal(t, http.StatusTooManyRequests, r.Status, "what the client wrote left of the proxy's entry is ignored")
		r = l.get(t, "/v1/jobs", f.keys[auth.Owner], alice)
		require.Equal(t, http.StatusOK, r.Status, "another address is unaffected")

		l.clock.Step(10 * time.Second)
		r = l.get(t, "/v1/jobs", f.keys[auth.Owner], mallory)
		require.Equal(t, http.StatusOK, r.Status, "one failure's worth of budget is back")
	})
	t.Run("without a trusted proxy", func(t *testing.T) {
		l := f.limitedReplica(t, cfg, newClock(), nil, nil)
		for range 2 {
			require.Equal(t, http.StatusUnauthorized, l.get(t, "/v1/jobs", bad, "198.51.100.1").Status)
		}
		r := l.get(t, "/v1/jobs", f.keys[auth.Owner], "198.51.100.2")
		require.Equal(t, http.StatusTooManyRequests, r.Status, "X-Forwarded-For from an untrusted peer is ignored: both are the peer")
	})
}

// TestRateLimitExemptions: the probes and the OpenAPI document are never
// limited, even for an address that is locked out; the WebSocket upgrade
// request is one request like any other.
func TestRateLimitExemptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.limitedReplica(t, ratelimit.Config{Key: perSecond(1, 1), Org: perSecond(1, 1), AuthFailure: perMinute(1, 1)}, newClock(), nil, nil)
	bad := tamper(f.keys[auth.Owner])
	require.Equal(t, http.StatusUnauthorized, l.get(t, "/v1/jobs", bad, "").Status)
	require.Equal(t, http.StatusTooManyRequests, l.get(t, "/v1/jobs", bad, "").Status)
	for _, path := range []string{"/health", "/ready", "/v1/openapi.json"} {
		for range 3 {
			r := l.get(t, path, bad, "")
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
			assert.Equal(t, none, budgetOf(t, r), path)
		}
	}

	// The upgrade request spends a token; refused, it is a 429 before any
	// upgrade. (Without Upgrade headers the handler answers 426.)
	// (Another address: the peer of app.Test is locked out above.)
	g := f.limitedReplica(t, ratelimit.Config{Key: perSecond(1, 1), Org: perSecond(1, 1)}, newClock(), appProxy, nil)
	r := g.get(t, "/ws?api_key="+f.keyB, "", "192.0.2.55")
	require.Equal(t, http.StatusUpgradeRequired, r.Status, "%s", r.Body)
	assert.Equal(t, budget{Limit: 1, Remaining: 0, Reset: 1}, budgetOf(t, r))
	r = g.get(t, "/ws?api_key="+f.keyB, "", "192.0.2.55")
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "1", r.Header.Get("Retry-After"))
}

// TestRateLimitWebSocketUpgrade: over a real connection, an upgrade spends
// one token and a refused one gets 429 with Retry-After instead of 101;
// the open connection is not limited further.
func TestRateLimitWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.limitedReplica(t, ratelimit.Config{Key: perMinute(1, 1), Org: perMinute(1, 1)}, newClock(), nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, resp, err := dialWS(t, ln.Addr().String(), f.keyB, "")
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

	_, resp, err = dialWS(t, ln.Addr().String(), f.keyB, "")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "60", resp.Header.Get("Retry-After"))
	assert.Equal(t, "0", resp.Header.Get(HeaderRateLimitRemaining))
}

// TestRateLimitFailsOpen: with the limiter's Redis unreachable, the API
// keeps answering as if unlimited, without budget headers, and invalid
// keys still get 401.
func TestRateLimitFailsOpen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	port, err := loopback.FreePort(nil)
	require.NoError(t, err)
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = dead.Close() })
	l := f.limitedReplica(t, ratelimit.Config{Key: perSecond(1, 1), Org: perSecond(1, 1), AuthFailure: perMinute(1, 1)}, newClock(), nil, dead)
	for range 3 {
		r := l.get(t, "/v1/jobs", f.keys[auth.Viewer], "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, none, budgetOf(t, r))
		r = l.get(t, "/v1/jobs", tamper(f.keys[auth.Viewer]), "")
		require.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, none, budgetOf(t, r))
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	ingress := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := map[string]struct {
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		"no trusted proxies: the peer, header ignored": {peer: "10.1.2.3", xff: []string{"198.51.100.7"}, want: "10.1.2.3"},
		"untrusted peer: header ignored":               {peer: "192.0.2.1", xff: []string{"198.51.100.7"}, trusted: ingress, want: "192.0.2.1"},
		"ingress-nginx default: one entry":             {peer: "10.1.2.3", xff: []string{"198.51.100.7"}, trusted: ingress, want: "198.51.100.7"},
		"spoofed entries left of the proxy's":          {peer: "10.1.2.3", xff: []string{"1.1.1.1, 203.0.113.9, 198.51.100.7"}, trusted: ingress, want: "198.51.100.7"},
		"a chain of trusted proxies":                   {peer: "10.1.2.3", xff: []string{"198.51.100.7, 10.9.9.9"}, trusted: ingress, want: "198.51.100.7"},
		"several header lines, in order":               {peer: "10.1.2.3", xff: []string{"203.0.113.9", "198.51.100.7, 10.9.9.9"}, trusted: ingress, want: "198.51.100.7"},
		"no header: the proxy itself":                  {peer: "10.1.2.3", trusted: ingress, want: "10.1.2.3"},
		"all trusted: the leftmost":                    {peer: "10.1.2.3", xff: []string{"10.7.7.7, 10.8.8.8"}, trusted: ingress, want: "10.7.7.7"},
		"garbage stops at the last trusted hop":        {peer: "10.1.2.3", xff: []string{"198.51.100.7, unknown, 10.9.9.9"}, trusted: ingress, want: "10.9.9.9"},
		"entry with a port":                            {peer: "10.1.2.3", xff: []string{"198.51.100.7:4711"}, trusted: ingress, want: "198.51.100.7"},
		"IPv6 entry with a port":                       {peer: "fd00::1", xff: []string{"[2001:db8::5]:443"}, trusted: ingress, want: "2001:db8::5"},
		"IPv4-mapped peer is the IPv4 address":         {peer: "::ffff:10.1.2.3", xff: []string{"198.51.100.7"}, trusted: ingress, want: "198.51.100.7"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var xff [][]byte
			for _, h := range tc.xff {
				xff = append(xff, []byte(h))
			}
			got := clientAddr(netip.MustParseAddr(tc.peer), xff, tc.trusted)
			assert.Equal(t, netip.MustParseAddr(tc.want), got)
		})
	}
}
