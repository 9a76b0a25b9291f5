package apiserver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/store"
)

// KeyCacheConfig tunes the API key cache. Zero values take the defaults.
type KeyCacheConfig struct {
	// TTL is the longest a cached key is used without asking Postgres
	// (default 30 s). It bounds how long a revocation can go unseen by a
	// replica that missed its invalidation message (Redis down, a
	// reconnect).
	TTL time.Duration
	// Size bounds the number of cached keys (default 10,000); when full,
	// expired entries go first, then arbitrary ones.
	Size int
	// Clock decides expiry (default: the real clock).
	Clock clock.PassiveClock
}

// KeyCache keeps recently authenticated API keys in memory so a request
// with a known key costs no Postgres round trip. Only successes are
// cached, keyed by the SHA-256 of the whole presented key, never by its
// prefix, so a wrong key with a right prefix is always checked against
// Postgres. A revocation, a member's role change or removal, and a change
// of an organization's status, plan or share weight (a principal carries
// the weight its submissions are queued with) drop the organization's
// entries here at once
// and, through Redis pub/sub, on every other replica (Run); the TTL is the
// backstop when a message is lost. Until Run has subscribed, nothing is
// served from the cache.
type KeyCache struct {
	cfg     KeyCacheConfig
	rdb     redis.UniversalClient
	channel string
	log     *slog.Logger

	mu         sync.Mutex
	entries    map[[32]byte]keyEntry
	generation uint64 // bumped by every invalidation
	subscribed bool
}

type keyEntry struct {
	p       store.Principal
	expires time.Time
}

// NewKeyCache returns a cache that learns of invalidations on channel
// (queue.Keys.KeyInvalidation) through rdb.
func NewKeyCache(rdb redis.UniversalClient, channel string, cfg KeyCacheConfig, log *slog.Logger) (*KeyCache, error) {
	cfg.TTL = cmp.Or(cfg.TTL, 30*time.Second)
	cfg.Size = cmp.Or(cfg.Size, 10000)
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.TTL < 0 || cfg.Size < 1 || rdb == nil || channel == "" {
		return nil, errors.New("apiserver: key cache needs a Redis client, a channel, a TTL ≥ 0 and a size ≥ 1")
	}
	return &KeyCache{cfg: cfg, rdb: rdb, channel: channel, log: log, entries: map[[32]byte]keyEntry{}}, nil
}

// lookup returns the cached principal of key, and the generation to hand
// to store when it was not cached.
func (k *KeyCache) lookup(key string) (store.Principal, uint64, bool) {
	sum := sha256.Sum256([]byte(key))
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[sum]
	if !ok || !k.subscribed || !k.cfg.Clock.Now().Before(e.expires) {
		return store.Principal{}, k.generation, false
	}
	return e.p, k.generation, true
}

// keep caches a principal read from Postgres, unless an invalidation came
// after the read began (gen is what lookup returned): the read may predate
// the change the invalidation announced.
func (k *KeyCache) keep(key string, p store.Principal, gen uint64) {
	sum := sha256.Sum256([]byte(key))
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.generation || !k.subscribed {
		return
	}
	now := k.cfg.Clock.Now()
	if len(k.entries) >= k.cfg.Size {
		for s, e := range k.entries {
			if !now.Before(e.expires) {
				delete(k.entries, s)
			}
		}
		for s := range k.entries {
			if len(k.entries) < k.cfg.Size {
				break
			}
			delete(k.entries, s)
		}
	}
	k.entries[sum] = keyEntry{p: p, expires: now.Add(k.cfg.TTL)}
}

// forget drops the organization's entries (every entry for uuid.Nil).
func (k *KeyCache) forget(org uuid.UUID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.generation++
	for s, e := range k.entries {
		if org == uuid.Nil || e.p.OrgID == org {
			delete(k.entries, s)
		}
	}
}

// Invalidate forgets the organization's keys here and tells every replica
// to do the same. Call it after the change committed. A failed publish is
// returned; other replicas then notice within the TTL.
func (k *KeyCache) Invalidate(ctx context.Context, org uuid.UUID) error {
	k.forget(org)
	if err := k.rdb.Publish(ctx, k.channel, org.String()).Err(); err != nil {
		return fmt.Errorf("publish key invalidation for organization %s: %w", org, err)
	}
	return nil
}

// Run subscribes to the invalidation channel until ctx ends. Every
// (re)subscription empties the cache, since messages published while the
// connection was down are lost.
func (k *KeyCache) Run(ctx context.Context) error {
	ps := k.rdb.Subscribe(ctx, k.channel)
	defer ps.Close()
	defer func() {
		k.mu.Lock()
		k.subscribed = false
		k.mu.Unlock()
	}()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			switch m := m.(type) {
			case *redis.Subscription:
				k.forget(uuid.Nil)
				k.mu.Lock()
				k.subscribed = m.Kind == "subscribe"
				k.mu.Unlock()
			case *redis.Message:
				org, err := uuid.Parse(m.Payload)
				if err != nil {
					k.log.WarnContext(ctx, "unreadable API key invalidation; dropping every cached key. Something other than MpegFlow publishes on the channel",
						slog.String("channel", k.channel))
					org = uuid.Nil
				}
				k.forget(org)
			}
		}
	}
}

// ready reports whether the cache serves: Run has subscribed.
func (k *KeyCache) ready() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subscribed
}

// len is the number of cached keys.
func (k *KeyCache) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}
