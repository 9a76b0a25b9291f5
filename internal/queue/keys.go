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
// trigger reads its length, so it holds one element per queued job. Since
// fair share (docs/design/0020-fair-share.md) it is a counter: the ids a
// claim takes come from the organizations' lists (OrgQueue), and the
// element a claim removes here is the oldest, which with several
// organizations need not be the id claimed.
func (k Keys) Queue(pool, lane string) string {
	if lane == apiv1.LaneBackfill {
		return k.Prefix + ":queue:" + pool + ":backfill"
	}
	return k.Prefix + ":queue:" + pool
}

// OrgQueue is the list of one organization's queued job ids on a pool's
// lane ("mpegflow:queue:{pool}[:backfill]:org:{org}"), oldest on the right.
func (k Keys) OrgQueue(pool, lane, org string) string { return k.orgQueuePrefix(pool, lane) + org }

// orgQueuePrefix is OrgQueue without the organization: the pop script
// appends the organization whose turn it is.
func (k Keys) orgQueuePrefix(pool, lane string) string { return k.Queue(pool, lane) + ":org:" }

// Orgs is the sorted set of the organizations with queued jobs on a pool's
// lane, scored by their virtual pass: the claim serves the lowest
// ("mpegflow:queue:{pool}[:backfill]:orgs").
func (k Keys) Orgs(pool, lane string) string { return k.Queue(pool, lane) + ":orgs" }

// Shares is the hash of a lane's fair-share state
// ("mpegflow:queue:{pool}[:backfill]:shares"): field "vtime" (the pass of
// the last organization served), "w:{org}" (its weight) and "p:{org}" (the
// pass an organization had when its list ran empty).
func (k Keys) Shares(pool, lane string) string { return k.Queue(pool, lane) + ":shares" }

// Delayed is the sorted set of retries waiting for their backoff.
func (k Keys) Delayed() string { return k.Prefix + ":delayed" }

// Paused is present while a pool is paused; claims refuse work meanwhile.
func (k Keys) Paused(pool string) string { return k.Prefix + ":pool:" + pool + ":paused" }

// Events is the pub/sub channel job and pool events fan out on.
func (k Keys) Events() string { return k.Prefix + ":events" }

// Wake is the pub/sub channel every push announces itself on ("N
// LANE-KEY": N ids were queued on the lane whose list is LANE-KEY), for
// coordinators to wake long-polling claims (ParseWake).
func (k Keys) Wake() string { return k.Prefix + ":wake" }

// KeyInvalidation is the pub/sub channel on which an API replica that
// changed who an API key acts as (a key revoked, a member's role changed
// or removed, an organization's status, plan or share weight changed)
// tells every replica to forget the organization's cached keys
// ("mpegflow:auth:invalidate"; the message is the organization id).
func (k Keys) KeyInvalidation() string { return k.Prefix + ":auth:invalidate" }

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
func (k Keys) All() string { return glob(k.Prefix) + ":*" }

// orgQueues is the SCAN pattern of every organization list of a pool's
// lane, including lists no longer named in Orgs.
func (k Keys) orgQueues(pool, lane string) string { return glob(k.orgQueuePrefix(pool, lane)) + "*" }

// glob escapes the glob characters of s for a SCAN MATCH pattern.
func glob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PoolOf returns the pool a pool's key belongs to (one of its lanes' lists,
// an organization list, the lane's Orgs or Shares, or its pause key), and
// false for any other key.
func (k Keys) PoolOf(key string) (string, bool) {
	if rest, ok := strings.CutPrefix(key, k.Prefix+":queue:"); ok {
		pool, tail, _ := strings.Cut(rest, ":")
		return pool, pool != "" && laneTail(tail)
	}
	if rest, ok := strings.CutPrefix(key, k.Prefix+":pool:"); ok {
		pool, paused := strings.CutSuffix(rest, ":paused")
		return pool, paused && pool != "" && !strings.Contains(pool, ":")
	}
	return "", false
}

// laneTail reports whether tail is what follows "queue:{pool}:" in one of
// the keys a pool's lane owns: nothing (the live list), "backfill", and
// either followed by "orgs", "shares" or "org:{org}".
func laneTail(tail string) bool {
	if tail == "" {
		return true
	}
	if t, ok := strings.CutPrefix(tail, apiv1.LaneBackfill); ok {
		if t == "" {
			return true
		}
		if tail, ok = strings.CutPrefix(t, ":"); !ok {
			return false
		}
	}
	switch tail {
	case "orgs", "shares":
		return true
	}
	org, ok := strings.CutPrefix(tail, "org:")
	return ok && org != "" && !strings.Contains(org, ":")
}
