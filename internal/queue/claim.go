package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// popScript is the claim gate: it refuses work while the pool is paused and
// otherwise pops the oldest id of the lane, atomically, so pause takes effect
// for every coordinator replica the moment the key exists (no DB read).
//
// KEYS[1] = pause key of the pool   (Keys.Paused)
// KEYS[2] = list of the pool's lane (Keys.Queue)
// Returns: {"paused"} | {"empty"} | {"job", <job id>}
var popScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'paused'}
end
local id = redis.call('RPOP', KEYS[2])
if not id then
  return {'empty'}
end
return {'job', id}
`)

// PopResult is what the claim gate answered.
type PopResult int

// The claim gate's answers.
const (
	PopEmpty PopResult = iota
	PopPaused
	PopJob
)

// Pop takes the next job id of a pool's lane unless the pool is paused.
func (q *Queue) Pop(ctx context.Context, pool, lane string) (PopResult, string, error) {
	res, err := popScript.Run(ctx, q.rdb, []string{q.keys.Paused(pool), q.keys.Queue(pool, lane)}).StringSlice()
	if err != nil {
		return PopEmpty, "", fmt.Errorf("pop from %s: %w", q.keys.Queue(pool, lane), err)
	}
	switch {
	case len(res) == 1 && res[0] == "paused":
		return PopPaused, "", nil
	case len(res) == 1 && res[0] == "empty":
		return PopEmpty, "", nil
	case len(res) == 2 && res[0] == "job":
		return PopJob, res[1], nil
	}
	return PopEmpty, "", fmt.Errorf("pop from %s: unexpected script reply %q", q.keys.Queue(pool, lane), res)
}

// takeDueScript moves due members out of the delayed set atomically, so two
// promoters never take the same id.
//
// KEYS[1] = delayed set (Keys.Delayed)
// ARGV[1] = now, unix seconds
// ARGV[2] = at most this many ids
// Returns: the ids taken (possibly empty)
var takeDueScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return ids
`)

// Delay schedules a job id to be promoted at due. The score is due in unix
// seconds rounded up: TakeDue compares with the current whole second, and
// an id taken before its due time would leave the set unpromoted.
func (q *Queue) Delay(ctx context.Context, jobID string, due time.Time) error {
	score := due.Add(time.Second - time.Nanosecond).Unix()
	if err := q.rdb.ZAdd(ctx, q.keys.Delayed(), redis.Z{Score: float64(score), Member: jobID}).Err(); err != nil {
		return fmt.Errorf("delay job %s: %w", jobID, err)
	}
	return nil
}

// TakeDue removes and returns up to limit ids due at now.
func (q *Queue) TakeDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := takeDueScript.Run(ctx, q.rdb, []string{q.keys.Delayed()}, strconv.FormatInt(now.Unix(), 10), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("take due retries: %w", err)
	}
	return ids, nil
}

// Members lists the ids on a pool's lane (the reconciler compares them with
// Postgres).
func (q *Queue) Members(ctx context.Context, pool, lane string) ([]string, error) {
	ids, err := q.rdb.LRange(ctx, q.keys.Queue(pool, lane), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", q.keys.Queue(pool, lane), err)
	}
	return ids, nil
}

// PushMany pushes ids onto a pool's lane in one round trip.
func (q *Queue) PushMany(ctx context.Context, pool, lane string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	if err := q.rdb.LPush(ctx, q.keys.Queue(pool, lane), args...).Err(); err != nil {
		return fmt.Errorf("push %d ids onto %s: %w", len(ids), q.keys.Queue(pool, lane), err)
	}
	return nil
}
