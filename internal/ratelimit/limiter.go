// Package ratelimit limits request rates with token buckets in Redis that
// every apiserver replica shares: one per API key, one per organization
// (each key's bucket sits under its organization's: a request spends from
// both), and one per client address that only failed authentications spend.
//
// One Lua script checks and spends atomically (one round trip per request).
// When Redis does not answer in time the limiter fails open: requests pass
// unlimited and a warning says so. Redis is MpegFlow's dispatch hint, not
// its truth; the API keeps serving through a Redis outage and rate limits
// must not turn one into a full API outage.
package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/queue"
)

// Defaults of Config: generous enough for scripted clients and the test
// suites, tight enough that one client cannot monopolise the API.
var (
	DefaultKey         = Limit{Rate: Rate{Tokens: 20, Per: time.Second}, Burst: 200}
	DefaultOrg         = Limit{Rate: Rate{Tokens: 50, Per: time.Second}, Burst: 500}
	DefaultAuthFailure = Limit{Rate: Rate{Tokens: 60, Per: time.Minute}, Burst: 60}
)

// Config tunes the limiter; zero values take the defaults noted.
type Config struct {
	// Key is each API key's budget (default DefaultKey). It must fit inside
	// Org: a key can never spend more than its organization.
	Key Limit
	// Org is each organization's budget, shared by all its keys (default
	// DefaultOrg).
	Org Limit
	// AuthFailure is each client address's budget of failed
	// authentications (default DefaultAuthFailure). While it is empty the
	// address is refused before its key is looked at, so keys cannot be
	// guessed quickly; valid keys from that address are refused too.
	AuthFailure Limit
	// Timeout bounds the Redis round trip; past it the request passes
	// unlimited (default 250 ms).
	Timeout time.Duration
	// Pause is how long after a Redis failure the limiter lets requests
	// pass without asking Redis, so an outage costs one Timeout per Pause
	// rather than one per request (default 1 s).
	Pause time.Duration
	// WarnEvery is how often, at most, the fail-open warning is logged while
	// Redis keeps failing (default 1 min).
	WarnEvery time.Duration
	// Clock is the time buckets refill by (default the real clock).
	Clock clock.PassiveClock
}

// Limiter checks requests against their buckets.
type Limiter struct {
	cfg  Config
	rdb  redis.Scripter
	keys queue.Keys
	log  *slog.Logger

	mu          sync.Mutex
	pausedUntil time.Time // after a Redis failure: pass requests until then
	warnedAt    time.Time // last fail-open warning
	unwarned    int       // fail-open decisions since then
}

// New returns a limiter keeping its buckets in rdb under keys.
func New(cfg Config, rdb redis.Scripter, keys queue.Keys, log *slog.Logger) (*Limiter, error) {
	cfg.Key = cmp.Or(cfg.Key, DefaultKey)
	cfg.Org = cmp.Or(cfg.Org, DefaultOrg)
	cfg.AuthFailure = cmp.Or(cfg.AuthFailure, DefaultAuthFailure)
	cfg.Timeout = cmp.Or(cfg.Timeout, 250*time.Millisecond)
	cfg.Pause = cmp.Or(cfg.Pause, time.Second)
	cfg.WarnEvery = cmp.Or(cfg.WarnEvery, time.Minute)
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	var errs []error
	for _, l := range []struct {
		name  string
		limit Limit
	}{{"key", cfg.Key}, {"organization", cfg.Org}, {"auth failure", cfg.AuthFailure}} {
		if err := l.limit.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s limit: %w", l.name, err))
		}
	}
	if err := cfg.Key.Within(cfg.Org); err != nil {
		errs = append(errs, fmt.Errorf("key limit must fit inside the organization limit: %w", err))
	}
	if cfg.Timeout < 0 || cfg.Pause < 0 || cfg.WarnEvery < 0 {
		errs = append(errs, errors.New("timeout, pause and warning period must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	return &Limiter{cfg: cfg, rdb: rdb, keys: keys, log: log}, nil
}

// Scope names the bucket a decision describes.
type Scope string

// The buckets.
const (
	ScopeKey    Scope = "key"
	ScopeOrg    Scope = "organization"
	ScopeClient Scope = "client" // failed authentications of a client address
)

// Decision is the limiter's answer for one request, and the budget the
// response advertises.
type Decision struct {
	// Allowed says the request may proceed.
	Allowed bool
	// Enforced is false when Redis did not answer and the limiter failed
	// open: no budget was consulted, the fields below are zero.
	Enforced bool
	// Scope is the bucket described: the one that refused the request, else
	// the spent bucket closest to empty.
	Scope Scope
	// Limit is that bucket's policy.
	Limit Limit
	// Remaining is how many whole tokens it holds now.
	Remaining int
	// Reset is how long until it is full again.
	Reset time.Duration
	// RetryAfter, when refused, is how long until the request could pass
	// (every bucket it needs holds a token again).
	RetryAfter time.Duration
}

// Allow decides a request whose API key authenticated: it spends one token
// from the key's and one from the organization's bucket, provided both hold
// one and the client address has failed-authentication budget left.
func (l *Limiter) Allow(ctx context.Context, client netip.Addr, keyID, orgID string) Decision {
	return l.decide(ctx, []bucket{
		{scope: ScopeClient, key: l.keys.RateLimitClient(ClientName(client)), limit: l.cfg.AuthFailure, spend: false},
		{scope: ScopeKey, key: l.keys.RateLimitKey(keyID), limit: l.cfg.Key, spend: true},
		{scope: ScopeOrg, key: l.keys.RateLimitOrg(orgID), limit: l.cfg.Org, spend: true},
	})
}

// Fail decides a request whose API key did not authenticate: it spends one
// token from the client address's failure bucket. Refused, the client must
// wait before it may present any key again.
func (l *Limiter) Fail(ctx context.Context, client netip.Addr) Decision {
	return l.decide(ctx, []bucket{
		{scope: ScopeClient, key: l.keys.RateLimitClient(ClientName(client)), limit: l.cfg.AuthFailure, spend: true},
	})
}

func (l *Limiter) decide(ctx context.Context, buckets []bucket) Decision {
	now := l.cfg.Clock.Now()
	if l.paused(now) {
		return Decision{Allowed: true}
	}
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	allowed, states, err := take(tctx, l.rdb, now, buckets)
	if err != nil {
		if ctx.Err() == nil { // the caller did not give up: Redis failed
			l.failed(ctx, now, err)
		}
		return Decision{Allowed: true}
	}
	pick := -1
	for i, st := range states {
		switch {
		case !allowed: // the bucket that makes the client wait longest
			if st.Next > 0 && (pick < 0 || st.Next > states[pick].Next) {
				pick = i
			}
		case buckets[i].spend: // the spent bucket closest to empty
			if pick < 0 || st.Remaining < states[pick].Remaining ||
				(st.Remaining == states[pick].Remaining && st.Full > states[pick].Full) {
				pick = i
			}
		}
	}
	if pick < 0 { // cannot happen while the script keeps its contract
		l.failed(ctx, now, fmt.Errorf("rate limit script answered allowed=%t without a bucket to report: %+v", allowed, states))
		return Decision{Allowed: true}
	}
	st := states[pick]
	d := Decision{Allowed: allowed, Enforced: true, Scope: buckets[pick].scope, Limit: buckets[pick].limit, Remaining: st.Remaining, Reset: st.Full}
	if !allowed {
		d.RetryAfter = st.Next
	}
	return d
}

// paused reports whether a recent Redis failure lets requests pass without
// asking Redis, and counts those that do.
func (l *Limiter) paused(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pausedUntil) {
		l.unwarned++
		return true
	}
	return false
}

// failed pauses the limiter after a Redis failure and logs that limits are
// not enforced, at most once per WarnEvery.
func (l *Limiter) failed(ctx context.Context, now time.Time, err error) {
	l.mu.Lock()
	l.pausedUntil = now.Add(l.cfg.Pause)
	l.unwarned++
	if !l.warnedAt.IsZero() && now.Sub(l.warnedAt) < l.cfg.WarnEvery {
		l.mu.Unlock()
		return
	}
	n := l.unwarned
	l.warnedAt, l.unwarned = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, "rate limits are not enforced: Redis did not answer, so requests pass unlimited; "+
		"restore Redis (REDIS_URL, GET /ready shows its state) or set MPEGFLOW_RATE_LIMIT_ENABLED=false to run without limits on purpose",
		slog.Any("error", err), slog.Int("unlimited_requests", n), slog.Duration("repeats_every", l.cfg.WarnEvery))
}

// ClientName names a client address's bucket: an IPv4 address as written,
// an IPv6 address by its /64, the block one subscriber usually holds, so
// walking through its addresses gains an attacker nothing.
func ClientName(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64) // never fails for an IPv6 address and 64 bits
		return p.String()
	}
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}
