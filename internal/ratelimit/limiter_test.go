package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/internal/loopback"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

var (
	clientA = netip.MustParseAddr("198.51.100.7")
	clientB = netip.MustParseAddr("203.0.113.9")
)

// setup is a limiter on the test Redis under a private prefix, with a fake
// clock: no test here waits for real time.
type setup struct {
	lim   *Limiter
	clock *clocktesting.FakeClock
	rdb   *redis.Client
	keys  queue.Keys
}

func newSetup(t *testing.T, cfg Config) setup {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	cfg.Clock = clk
	cfg.Timeout = cmpOr(cfg.Timeout, 10*time.Second) // a slow CI machine must not fail open
	keys := queue.NewKeys(prefix)
	lim, err := New(cfg, rdb, keys, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return setup{lim: lim, clock: clk, rdb: rdb, keys: keys}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func perSecond(n, burst int) Limit {
	return Limit{Rate: Rate{Tokens: n, Per: time.Second}, Burst: burst}
}

// TestAllowRefusesExactlyAfterBurst: a key with burst 3 passes three
// requests at one instant, counting down, and the fourth is refused with
// the exact wait for one token; after that wait it passes again.
func TestAllowRefusesExactlyAfterBurst(t *testing.T) {
	t.Parallel()
	s := newSetup(t, Config{Key: perSecond(4, 3), Org: perSecond(100, 100)})
	key, org := uuid.NewString(), uuid.NewString()
	for i, remaining := range []int{2, 1, 0} {
		d := s.lim.Allow(t.Context(), clientA, key, org)
		want := Decision{Allowed: true, Enforced: true, Scope: ScopeKey, Limit: perSecond(4, 3), Remaining: remaining,
			Reset: time.Duration(3-remaining) * 250 * time.Millisecond}
		assert.Equal(t, want, d, "request %d", i+1)
	}
	d := s.lim.Allow(t.Context(), clientA, key, org)
	assert.Equal(t, Decision{Allowed: false, Enforced: true, Scope: ScopeKey, Limit: perSecond(4, 3),
		Remaining: 0, Reset: 750 * time.Millisecond, RetryAfter: 250 * time.Millisecond}, d)

	s.clock.Step(249 * time.Millisecond)
	d = s.lim.Allow(t.Context(), clientA, key, org)
	assert.False(t, d.Allowed, "one millisecond early")
	assert.Equal(t, time.Millisecond, d.RetryAfter)
	s.clock.Step(time.Millisecond)
	d = s.lim.Allow(t.Context(), clientA, key, org)
	assert.True(t, d.Allowed, "a token is back after 1/rate")
	assert.Equal(t, 0, d.Remaining)
}

// TestKeyBucketIsUnderItsOrganization: two keys of one organization each
// have burst 3, the organization 5: the first key's fourth request is
// refused by its own bucket; the second key gets only what the organization
// has left, then is refused by the organization's bucket.
func TestKeyBucketIsUnderItsOrganization(t *testing.T) {
	t.Parallel()
	s := newSetup(t, Config{Key: perSecond(1, 3), Org: perSecond(1, 5)})
	org, key1, key2 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for range 3 {
		require.True(t, s.lim.Allow(t.Context(), clientA, key1, org).Allowed)
	}
	d := s.lim.Allow(t.Context(), clientA, key1, org)
	assert.False(t, d.Allowed)
	assert.Equal(t, ScopeKey, d.Scope)

	d = s.lim.Allow(t.Context(), clientA, key2, org)
	assert.True(t, d.Allowed)
	assert.Equal(t, ScopeOrg, d.Scope, "the organization (1 left) is closer to empty than the key (2 left)")
	assert.Equal(t, 1, d.Remaining)
	require.True(t, s.lim.Allow(t.Context(), clientA, key2, org).Allowed)
	d = s.lim.Allow(t.Context(), clientA, key2, org)
	assert.False(t, d.Allowed)
	assert.Equal(t, ScopeOrg, d.Scope)
	assert.Equal(t, time.Second, d.RetryAfter)

	// The refused requests spent nothing: the second key still holds 1.
	s.clock.Step(time.Second)
	d = s.lim.Allow(t.Context(), clientA, key2, org)
	assert.True(t, d.Allowed)
	assert.Equal(t, ScopeOrg, d.Scope)
	assert.Equal(t, 0, d.Remaining)
	h, err := s.rdb.HGet(t.Context(), s.keys.RateLimitKey(key2), "level").Result()
	require.NoError(t, err)
	assert.Equal(t, "1000", h, "key2: burst 3, spent 3, refilled 1: had the refusal spent, it would be empty")
}

// TestOrganizationsAreIndependent: org A exhausting its budget leaves org B
// its whole burst.
func TestOrganizationsAreIndependent(t *testing.T) {
	t.Parallel()
	s := newSetup(t, Config{Key: perSecond(1, 2), Org: perSecond(1, 2)})
	keyA, orgA, keyB, orgB := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	for range 2 {
		require.True(t, s.lim.Allow(t.Context(), clientA, keyA, orgA).Allowed)
	}
	require.False(t, s.lim.Allow(t.Context(), clientA, keyA, orgA).Allowed)
	for i, remaining := range []int{1, 0} {
		d := s.lim.Allow(t.Context(), clientA, keyB, orgB)
		assert.True(t, d.Allowed, "org B request %d", i+1)
		assert.Equal(t, remaining, d.Remaining)
	}
}

// TestFailedAuthenticationsLockOutTheClient: the failure budget is spent
// only by failures; once empty, the address is refused even with a valid
// key (and that refusal spends nothing); other addresses are unaffected;
// addresses of one IPv6 /64 share a bucket.
func TestFailedAuthenticationsLockOutTheClient(t *testing.T) {
	t.Parallel()
	s := newSetup(t, Config{AuthFailure: Limit{Rate: Rate{Tokens: 6, Per: time.Minute}, Burst: 2}})
	key, org := uuid.NewString(), uuid.NewString()
	require.True(t, s.lim.Allow(t.Context(), clientA, key, org).Allowed, "successes spend no failure budget")
	for i := range 2 {
		d := s.lim.Fail(t.Context(), clientA)
		assert.True(t, d.Allowed, "failure %d is answered 401", i+1)
		assert.Equal(t, ScopeClient, d.Scope)
		assert.Equal(t, 1-i, d.Remaining)
	}
	d := s.lim.Fail(t.Context(), clientA)
	assert.Equal(t, Decision{Enforced: true, Scope: ScopeClient, Limit: Limit{Rate: Rate{Tokens: 6, Per: time.Minute}, Burst: 2},
		Reset: 20 * time.Second, RetryAfter: 10 * time.Second}, d)

	d = s.lim.Allow(t.Context(), clientA, key, org)
	assert.False(t, d.Allowed, "a locked-out address may not try keys, valid or not")
	assert.Equal(t, ScopeClient, d.Scope)
	assert.Equal(t, 10*time.Second, d.RetryAfter)
	level, err := s.rdb.HGet(t.Context(), s.keys.RateLimitKey(key), "level").Result()
	require.NoError(t, err)
	assert.Equal(t, "199000", level, "the refused request spent no key token (burst 200, one spent)")

	assert.True(t, s.lim.Allow(t.Context(), clientB, key, org).Allowed, "another address is unaffected")

	v6a, v6b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	require.True(t, s.lim.Fail(t.Context(), v6a).Allowed)
	require.True(t, s.lim.Fail(t.Context(), v6a).Allowed)
	assert.False(t, s.lim.Fail(t.Context(), v6b).Allowed, "same /64, same bucket")
	assert.True(t, s.lim.Fail(t.Context(), netip.MustParseAddr("2001:db8:1:3::1")).Allowed, "next /64, own bucket")
}

func TestClientName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"198.51.100.7":          "198.51.100.7",
		"::ffff:198.51.100.7":   "198.51.100.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"fe80::1%eth0":          "fe80::/64",
		"2001:db8:1:2::ab:cdef": "2001:db8:1:2::/64",
	} {
		assert.Equal(t, want, ClientName(netip.MustParseAddr(in)), in)
	}
	assert.Equal(t, "unknown", ClientName(netip.Addr{}))
}

// TestFailOpen: with Redis unreachable every request passes, unenforced.
// After a failure the limiter stops asking Redis for Pause; the warning that
// says what to do is logged once per WarnEvery (counting the requests that
// passed unlimited), not once per request.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	port, err := loopback.FreePort(nil)
	require.NoError(t, err)
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = dead.Close() })
	asked := &commandCounter{}
	dead.AddHook(asked)
	var logs bytes.Buffer
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	lim, err := New(Config{Clock: clk, Pause: time.Second, WarnEvery: time.Minute}, dead, queue.NewKeys("test"), slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)

	assert.Equal(t, Decision{Allowed: true}, lim.Allow(t.Context(), clientA, "k", "o"))
	require.Equal(t, int64(1), asked.n.Load(), "the first request asks Redis")
	for range 2 {
		assert.Equal(t, Decision{Allowed: true}, lim.Allow(t.Context(), clientA, "k", "o"))
		assert.Equal(t, Decision{Allowed: true}, lim.Fail(t.Context(), clientA))
	}
	clk.Step(999 * time.Millisecond)
	assert.Equal(t, Decision{Allowed: true}, lim.Fail(t.Context(), clientA))
	assert.Equal(t, int64(1), asked.n.Load(), "within the pause Redis is not asked")
	clk.Step(time.Millisecond)
	assert.Equal(t, Decision{Allowed: true}, lim.Allow(t.Context(), clientA, "k", "o"))
	assert.Equal(t, int64(2), asked.n.Load(), "after the pause Redis is asked again")
	clk.Step(time.Minute)
	assert.Equal(t, Decision{Allowed: true}, lim.Allow(t.Context(), clientA, "k", "o"))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2, "one warning, then one a minute later: %s", logs.String())
	for i, wantCount := range []float64{1, 7} {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &rec))
		assert.Equal(t, "WARN", rec["level"])
		assert.Contains(t, rec["msg"], "rate limits are not enforced")
		assert.Contains(t, rec["msg"], "restore Redis")
		assert.Contains(t, rec["error"], "connect: connection refused")
		assert.Equal(t, wantCount, rec["unlimited_requests"], "warning %d", i+1)
	}

	// A caller that gave up is not a Redis failure: nothing is logged.
	logs.Reset()
	clk.Step(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.True(t, lim.Allow(ctx, clientA, "k", "o").Allowed)
	assert.Empty(t, logs.String())
}

// commandCounter counts the commands a client was asked to send.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := map[string]struct {
		cfg  Config
		want string // substring of the error; empty = valid
	}{
		"defaults":                 {cfg: Config{}},
		"key rate above org":       {cfg: Config{Key: perSecond(60, 10), Org: perSecond(59, 100)}, want: "key limit must fit inside the organization limit: rate 60/s exceeds 59/s"},
		"key burst above org":      {cfg: Config{Key: perSecond(1, 101), Org: perSecond(59, 100)}, want: "burst 101 exceeds 100"},
		"equal rates, other units": {cfg: Config{Key: Limit{Rate: Rate{Tokens: 60, Per: time.Minute}, Burst: 1}, Org: perSecond(1, 1)}},
		"zero burst":               {cfg: Config{Key: Limit{Rate: Rate{Tokens: 1, Per: time.Second}}}, want: "key limit: burst 0"},
		"zero rate":                {cfg: Config{Org: Limit{Burst: 5}}, want: "organization limit: rate"},
		"odd unit":                 {cfg: Config{AuthFailure: Limit{Rate: Rate{Tokens: 1, Per: 2 * time.Second}, Burst: 1}}, want: "auth failure limit: rate 1/2s: the unit must be"},
		"burst too big":            {cfg: Config{Org: perSecond(100, MaxBurst+1)}, want: "burst 1000001: want from 1 to 1000000"},
		"negative timeout":         {cfg: Config{Timeout: -time.Second}, want: "must be positive"},
		"negative pause":           {cfg: Config{Pause: -time.Second}, want: "must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg, rdb, queue.NewKeys("x"), slog.New(slog.DiscardHandler))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Rate{
		"20/s":    {20, time.Second},
		" 600/m ": {600, time.Minute},
		"1000/h":  {1000, time.Hour},
	} {
		got, err := ParseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, strings.TrimSpace(in), got.String(), "String is ParseRate's inverse")
	}
	for _, bad := range []string{"", "20", "20/d", "/s", "x/s", "0/s", "-1/s", "1000001/s", "1.5/s", "20 /s"} {
		_, err := ParseRate(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// BenchmarkAllow measures one decision of an authenticated request (client,
// key and organization buckets) on the test Redis, and counts its round
// trips.
func BenchmarkAllow(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	sent := &commandCounter{}
	rdb.AddHook(sent)
	huge := Limit{Rate: Rate{Tokens: MaxTokens, Per: time.Second}, Burst: MaxBurst}
	lim, err := New(Config{Key: huge, Org: huge}, rdb, queue.NewKeys(prefix), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	key, org := uuid.NewString(), uuid.NewString()
	before, n := sent.n.Load(), 0
	for b.Loop() {
		if d := lim.Allow(b.Context(), clientA, key, org); !d.Allowed || !d.Enforced {
			b.Fatalf("decision %+v", d)
		}
		n++
	}
	b.ReportMetric(float64(sent.n.Load()-before)/float64(n), "redis_round_trips/op")
}
