package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// repairScript puts a lane's fair-share structure right, atomically, for
// the queue reconciler: the organizations named (those with queued jobs in
// Postgres) get their current weight, and their lists their place in the
// turn order if they lost it; organizations whose lists are empty leave it;
// and when the length of the list KEDA counts differs from the number of
// ids on the organizations' lists (a Redis that lost keys, an edit by hand,
// a list written before fair share), it is rebuilt from them.
//
// KEYS[1] = list of the pool's lane, KEDA's  (Keys.Queue)
// KEYS[2] = organizations with queued work   (Keys.Orgs)
// KEYS[3] = fair-share state of the lane     (Keys.Shares)
// ARGV[1] = organization list prefix of the lane: ARGV[1]..org = Keys.OrgQueue
// ARGV[2k], ARGV[2k+1] = organization id, its weight (0 keeps the stored one)
// Returns: {ids on the organizations' lists, elements the KEDA list had}
var repairScript = redis.NewScript(`
local vtime = tonumber(redis.call('HGET', KEYS[3], 'vtime')) or 0
for i = 2, #ARGV - 1, 2 do
  local org, w = ARGV[i], tonumber(ARGV[i + 1])
  if w and w > 0 then
    redis.call('HSET', KEYS[3], 'w:' .. org, w)
  end
  if redis.call('LLEN', ARGV[1] .. org) > 0 and not redis.call('ZSCORE', KEYS[2], org) then
    redis.call('ZADD', KEYS[2], vtime, org)
  end
end
local orgs = redis.call('ZRANGE', KEYS[2], 0, -1)
local total = 0
for _, org in ipairs(orgs) do
  local n = redis.call('LLEN', ARGV[1] .. org)
  if n == 0 then
    redis.call('ZREM', KEYS[2], org)
  end
  total = total + n
end
local had = redis.call('LLEN', KEYS[1])
if had ~= total then
  redis.call('DEL', KEYS[1])
  for _, org in ipairs(orgs) do
    local ids = redis.call('LRANGE', ARGV[1] .. org, 0, -1)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
    end
  end
end
return {total, had}
`)

// Repair makes a pool's lane consistent (see repairScript): tenants are the
// organizations with queued jobs on it and their current weights. It
// returns the number of ids queued on the organizations' lists and how
// many elements the list KEDA counts had before (they differ when it was
// rebuilt).
func (q *Queue) Repair(ctx context.Context, pool, lane string, tenants []Tenant) (queued, had int64, err error) {
	args := make([]any, 0, 1+2*len(tenants))
	args = append(args, q.keys.orgQueuePrefix(pool, lane))
	for _, t := range tenants {
		if err := t.validate(); err != nil {
			return 0, 0, fmt.Errorf("repair %s: %w", q.keys.Queue(pool, lane), err)
		}
		args = append(args, t.Org, t.Weight)
	}
	keys := []string{q.keys.Queue(pool, lane), q.keys.Orgs(pool, lane), q.keys.Shares(pool, lane)}
	res, err := repairScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("repair %s: %w", q.keys.Queue(pool, lane), err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("repair %s: unexpected script reply %v", q.keys.Queue(pool, lane), res)
	}
	return res[0], res[1], nil
}
