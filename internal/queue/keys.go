// Package queue owns MpegFlow's Redis layout: the key builders of
// design.md's contract table and the operations on them. Every Redis key the
// product touches is built here, so a key prefix can isolate tests and a
// renamed key changes in one place.
package queue

import (
	"strings"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// DefaultPrefix is the production prefix of every key ("mpegflow").
const DefaultPrefix = "mpegflow"

// Keys builds Redis key names under a prefix.
type Keys struct{ Prefix string }

// NewKeys returns key builders under prefix (DefaultPrefix when empty).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{Prefix: prefix}
}

// Queue is the list of a pool's lane: "mpegflow:queue:{pool}" for the live
// lane, "mpegflow:queue:{pool}:backfill" for the backfill lane. KEDA's redis
// trigger reads its length.
func (k Keys) Queue(pool, lane string) string {
	if lane == apiv1.LaneBackfill {
		return k.Prefix + ":queue:" + pool + ":backfill"
	}
	return k.Prefix + ":queue:" + pool
}

// Delayed is the sorted set of retries waiting for their backoff.
func (k Keys) Delayed() string { return k.Prefix + ":delayed" }

// Paused is present while a pool is paused; claims refuse work meanwhile.
func (k Keys) Paused(pool string) string { return k.Prefix + ":pool:" + pool + ":paused" }

// Events is the pub/sub channel job and pool events fan out on.
func (k Keys) Events() string { return k.Prefix + ":events" }

// RateLimitKey is the token bucket of one API key (a HASH the rate limiter's
// script keeps; it expires once the bucket would be full again).
func (k Keys) RateLimitKey(keyID string) string { return k.Prefix + ":ratelimit:key:" + keyID }

// RateLimitOrg is the token bucket of one organization, shared by all its
// keys.
func (k Keys) RateLimitOrg(orgID string) string { return k.Prefix + ":ratelimit:org:" + orgID }

// RateLimitClient is the bucket of failed authentications from one client
// address (an IPv4 address or an IPv6 /64, as the rate limiter names it).
func (k Keys) RateLimitClient(client string) string { return k.Prefix + ":ratelimit:ip:" + client }

// All is the SCAN pattern of every key under the prefix (glob characters in
// the prefix escaped).
func (k Keys) All() string {
	var b strings.Builder
	for _, r := range k.Prefix {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + ":*"
}

// PoolOf returns the pool a pool's key belongs to (one of its lanes' lists
// or its pause key), and false for any other key.
func (k Keys) PoolOf(key string) (string, bool) {
	if rest, ok := strings.CutPrefix(key, k.Prefix+":queue:"); ok {
		pool := strings.TrimSuffix(rest, ":backfill")
		return pool, pool != "" && !strings.Contains(pool, ":")
	}
	if rest, ok := strings.CutPrefix(key, k.Prefix+":pool:"); ok {
		pool, paused := strings.CutSuffix(rest, ":paused")
		return pool, paused && pool != "" && !strings.Contains(pool, ":")
	}
	return "", false
}
