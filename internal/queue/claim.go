package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// popScript is the claim gate: it refuses work while the pool is paused and
// otherwise takes the next ids of the organizations whose turn it is, all
// atomically, so pause takes effect for every coordinator replica the moment
// the key exists (no DB read) and the lane's counters never drift.
//
// Whose turn it is: Orgs scores every organization with queued work by its
// virtual pass; the lowest is served (ties by organization id), then its
// pass grows by 1/weight, so over time each backlogged organization is
// served in proportion to its weight (stride scheduling, a smooth weighted
// round robin in O(log n) per claim). "vtime" in Shares is the pass last
// served; an organization that joins starts there (see pushScript).
// Within an organization the list is FIFO with urgent ids pushed next.
// An organization in Orgs whose list is empty (drift) is removed and the
// next one tried.
//
// It takes up to ARGV[2] ids, one after another as that many calls of one
// would (the claims of one lane that go to Redis together: PopMany), and
// stops early when the lane runs out.
//
// KEYS[1] = pause key of the pool            (Keys.Paused)
// KEYS[2] = list of the pool's lane, KEDA's  (Keys.Queue)
// KEYS[3] = organizations with queued work   (Keys.Orgs)
// KEYS[4] = fair-share state of the lane     (Keys.Shares)
// ARGV[1] = organization list prefix of the lane: ARGV[1]..org = Keys.OrgQueue
// ARGV[2] = how many ids to take (at least 1)
// Returns: {"paused"} | {"ids", <job id>, <org id>, <job id>, <org id>, ...}
// (no pair: the lane is empty)
var popScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'paused'}
end
local want = math.max(1, tonumber(ARGV[2]) or 1)
local out = {'ids'}
while #out < 1 + 2 * want do
  local top = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if #top == 0 then
    break
  end
  local org, pass = top[1], tonumber(top[2])
  local list = ARGV[1] .. org
  local id = redis.call('RPOP', list)
  if id then
    redis.call('RPOP', KEYS[2])
    local w = tonumber(redis.call('HGET', KEYS[4], 'w:' .. org)) or 1
    if w < 1 then w = 1 end
    local nextPass = pass + 1 / w
    redis.call('HSET', KEYS[4], 'vtime', pass)
    if redis.call('LLEN', list) == 0 then
      redis.call('ZREM', KEYS[3], org)
      redis.call('HSET', KEYS[4], 'p:' .. org, nextPass)
    else
      redis.call('ZADD', KEYS[3], nextPass, org)
    end
    out[#out + 1] = id
    out[#out + 1] = org
  else
    redis.call('ZREM', KEYS[3], org)
  end
end
return out
`)

// PopResult is what the claim gate answered.
type PopResult int

// The claim gate's answers.
const (
	PopEmpty PopResult = iota
	PopPaused
	PopJob
)

// Pop takes the next job id of a pool's lane unless the pool is paused: the
// oldest (or most urgent) id of the organization whose turn it is. It also
// returns that organization, so a claim that fails can push the id back.
func (q *Queue) Pop(ctx context.Context, pool, lane string) (PopResult, string, string, error) {
	popped := q.PopMany(ctx, []Lane{{Pool: pool, Lane: lane}})[0]
	return popped.Result, popped.ID, popped.Org, popped.Err
}

// Lane names a pool's lane.
type Lane struct{ Pool, Lane string }

// Popped is one pop's answer: what the claim gate said, and with PopJob
// the id and its organization; Err is the error of its lane's script call
// (PopMany), which every pop of that lane in the call shares.
type Popped struct {
	Result  PopResult
	ID, Org string
	Err     error
}

// PopMany makes one pop per element of lanes (a lane may be named more
// than once: each pop takes its own id) in one round trip, and answers
// each as Pop would. The pops of one lane are one script call, which takes
// as many ids as the lane is named, in the order its pops are named (one
// script run where each pop was one: at 16 pods about four a round trip);
// the lanes' calls go in one pipeline, not one transaction: each is atomic
// on its own, as a lone Pop is. A call whose script Redis had not loaded
// is run again once the script is. A call whose reply is lost (a cut
// connection, a timeout) may have taken its ids: its pops all get the
// error, and the ids, gone from Redis, are queued again by the queue
// reconciler (dispatcher's ReconcileQueues), as a lone pop's id was.
func (q *Queue) PopMany(ctx context.Context, lanes []Lane) []Popped {
	var distinct []Lane
	named := make(map[Lane][]int, len(lanes)) // each lane's places in lanes
	for i, l := range lanes {
		if _, ok := named[l]; !ok {
			distinct = append(distinct, l)
		}
		named[l] = append(named[l], i)
	}
	cmds := q.runEach(ctx, popScript, len(distinct), func(p redis.Pipeliner, i int) *redis.Cmd {
		l := distinct[i]
		keys := []string{q.keys.Paused(l.Pool), q.keys.Queue(l.Pool, l.Lane), q.keys.Orgs(l.Pool, l.Lane), q.keys.Shares(l.Pool, l.Lane)}
		return popScript.EvalSha(ctx, p, keys, q.keys.orgQueuePrefix(l.Pool, l.Lane), len(named[l]))
	})
	out := make([]Popped, len(lanes))
	for i, cmd := range cmds {
		l := distinct[i]
		for k, p := range q.popAnswers(l, cmd, len(named[l])) {
			out[named[l][k]] = p
		}
	}
	return out
}

// popAnswers reads one pop script's reply to a call for n ids: one answer
// each, the ids in the order taken, PopEmpty for those the lane ran out
// before.
func (q *Queue) popAnswers(l Lane, cmd *redis.Cmd, n int) []Popped {
	out := make([]Popped, n)
	res, err := cmd.StringSlice()
	switch {
	case err != nil:
		err = fmt.Errorf("pop from %s: %w", q.keys.Queue(l.Pool, l.Lane), err)
	case len(res) == 1 && res[0] == "paused":
		for i := range out {
			out[i].Result = PopPaused
		}
		return out
	case len(res) == 0 || res[0] != "ids" || len(res)%2 != 1 || len(res) > 1+2*n:
		err = fmt.Errorf("pop from %s: unexpected script reply %q", q.keys.Queue(l.Pool, l.Lane), res)
	}
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	for i := range out {
		if 2*i+2 < len(res) {
			out[i] = Popped{Result: PopJob, ID: res[2*i+1], Org: res[2*i+2]}
		}
	}
	return out
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
