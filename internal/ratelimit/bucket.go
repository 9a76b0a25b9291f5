package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// expirySlack is how long a bucket is kept past full (the script's slack;
// TestTakeScriptContract holds the two equal).
const expirySlack = time.Minute

// takeScript checks and spends tokens from several token buckets at once,
// atomically, so every apiserver replica shares one budget per bucket and a
// request either spends from all the buckets it names or from none.
//
// A bucket is a HASH {level, at}. Levels are counted in units of 1/per of a
// token, so that refilling rate tokens per per milliseconds adds exactly
// rate units per millisecond: every quantity is an integer. A missing bucket
// is full. A bucket is written only when it is spent from, and then expires
// a minute (expirySlack) after it would be full again, so idle buckets
// vanish. A clock that reads earlier than the bucket's stamp (a replica
// behind another) refills nothing and never moves the stamp back. The
// slack is there because "full again" is reckoned on the callers' clocks
// and the expiry runs on Redis's: without it, a bucket stamped by a replica
// whose clock is ahead would vanish early, handing a replica whose clock
// is right tokens it has not earned. Kept past full, a bucket reads full
// anyway, so the slack changes no decision.
//
// KEYS[i]       = bucket i (Keys.RateLimitClient, Keys.RateLimitKey, Keys.RateLimitOrg)
// ARGV[1]       = now, unix milliseconds
// ARGV[4i-2]    = burst of bucket i, tokens
// ARGV[4i-1]    = rate of bucket i, tokens per period
// ARGV[4i]      = period of bucket i, milliseconds
// ARGV[4i+1]    = "1": spend one token from bucket i; "0": only require one
// Returns: {allowed, then for each bucket i: remaining, full_ms, next_ms}
//
//	allowed   1 when every bucket holds at least one token (then each
//	          spending bucket lost one), else 0 (nothing written)
//	remaining whole tokens left in bucket i
//	full_ms   milliseconds until bucket i is full again
//	next_ms   milliseconds until bucket i holds one token (0: it does)
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local slack = 60000 -- expirySlack, milliseconds
local n = #KEYS
local level, at, cap, rate, per = {}, {}, {}, {}, {}
local allowed = 1
for i = 1, n do
  local a = 4 * i - 2
  rate[i] = tonumber(ARGV[a + 1])
  per[i] = tonumber(ARGV[a + 2])
  cap[i] = tonumber(ARGV[a]) * per[i]
  local state = redis.call('HMGET', KEYS[i], 'level', 'at')
  local l, t = tonumber(state[1]), tonumber(state[2])
  if l == nil or t == nil then
    l, t = cap[i], now
  elseif now > t then
    l, t = l + (now - t) * rate[i], now
  end
  if l > cap[i] then
    l = cap[i]
  end
  if l < per[i] then
    allowed = 0
  end
  level[i], at[i] = l, t
end
local out = {allowed}
for i = 1, n do
  local l = level[i]
  if allowed == 1 and ARGV[4 * i + 1] == '1' then
    l = l - per[i]
    redis.call('HSET', KEYS[i], 'level', string.format('%.0f', l), 'at', string.format('%.0f', at[i]))
    redis.call('PEXPIRE', KEYS[i], string.format('%.0f', math.ceil((cap[i] - l) / rate[i]) + slack))
  end
  local next = 0
  if l < per[i] then
    next = math.ceil((per[i] - l) / rate[i])
  end
  out[#out + 1] = math.floor(l / per[i])
  out[#out + 1] = math.ceil((cap[i] - l) / rate[i])
  out[#out + 1] = next
end
return out
`)

// bucket is one bucket a request is checked against.
type bucket struct {
	scope Scope
	key   string
	limit Limit
	spend bool // spend a token; false only requires one
}

// bucketState is what takeScript reports about one bucket.
type bucketState struct {
	Remaining int
	Full      time.Duration // until full again
	Next      time.Duration // until one token is there (0: it is)
}

// take runs takeScript: one round trip.
func take(ctx context.Context, rdb redis.Scripter, now time.Time, buckets []bucket) (bool, []bucketState, error) {
	keys := make([]string, len(buckets))
	args := make([]any, 0, 1+4*len(buckets))
	args = append(args, now.UnixMilli())
	for i, b := range buckets {
		keys[i] = b.key
		spend := "0"
		if b.spend {
			spend = "1"
		}
		args = append(args, b.limit.Burst, b.limit.Rate.Tokens, b.limit.Rate.Per.Milliseconds(), spend)
	}
	res, err := takeScript.Run(ctx, rdb, keys, args...).Int64Slice()
	if err != nil {
		return false, nil, fmt.Errorf("take rate limit tokens from %v: %w", keys, err)
	}
	if len(res) != 1+3*len(buckets) {
		return false, nil, fmt.Errorf("take rate limit tokens from %v: unexpected script reply %v", keys, res)
	}
	states := make([]bucketState, len(buckets))
	for i := range states {
		r := res[1+3*i:]
		states[i] = bucketState{Remaining: int(r[0]), Full: time.Duration(r[1]) * time.Millisecond, Next: time.Duration(r[2]) * time.Millisecond}
	}
	return res[0] == 1, states, nil
}
