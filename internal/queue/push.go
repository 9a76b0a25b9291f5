package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// pushScript queues job ids of one organization on a pool's lane: onto the
// organization's list and, one element each, onto the lane's list that
// KEDA counts, in the same step, so the two never disagree. The
// organization's weight is stored for the pop script, and an organization
// that had nothing queued joins the turn order at the current virtual time
// ("vtime"), or at the pass it had when its list last ran empty if that is
// later: queueing one job at a time never jumps ahead of organizations
// that wait, and a newcomer is served next instead of behind a backlog.
// Given a message, it then publishes it on the events channel, so the
// submit path's push and its job.queued event cost one round trip. Last it
// publishes "N LANE-KEY" on the wake channel, so that coordinators wake N
// of their long-polling claims on that lane at once instead of at their
// next poll.
//
// KEYS[1] = list of the pool's lane, KEDA's  (Keys.Queue)
// KEYS[2] = the organization's list          (Keys.OrgQueue)
// KEYS[3] = organizations with queued work   (Keys.Orgs)
// KEYS[4] = fair-share state of the lane     (Keys.Shares)
// ARGV[1] = organization id
// ARGV[2] = its weight; 0 keeps the stored one
// ARGV[3] = "1": urgent, the ids go next within the organization; "0": last
// ARGV[4] = the events channel (Keys.Events), or "": publish nothing
// ARGV[5] = the message to publish there after the push
// ARGV[6] = the wake channel (Keys.Wake)
// ARGV[7..] = job ids
// Returns: the number of ids pushed
var pushScript = redis.NewScript(`
local n = #ARGV - 6
if n < 1 then
  return 0
end
local cmd = 'LPUSH'
if ARGV[3] == '1' then cmd = 'RPUSH' end
for i = 7, #ARGV, 1000 do
  local last = math.min(i + 999, #ARGV)
  redis.call(cmd, KEYS[2], unpack(ARGV, i, last))
  redis.call(cmd, KEYS[1], unpack(ARGV, i, last))
end
local org = ARGV[1]
local w = tonumber(ARGV[2])
if w and w > 0 then
  redis.call('HSET', KEYS[4], 'w:' .. org, w)
end
if not redis.call('ZSCORE', KEYS[3], org) then
  local pass = tonumber(redis.call('HGET', KEYS[4], 'vtime')) or 0
  local last = tonumber(redis.call('HGET', KEYS[4], 'p:' .. org))
  if last and last > pass then pass = last end
  redis.call('ZADD', KEYS[3], pass, org)
  redis.call('HDEL', KEYS[4], 'p:' .. org)
end
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], n .. ' ' .. KEYS[1])
return n
`)

// pushChunk bounds the ids of one script call, so a batch of a hundred
// thousand ids does not hold Redis for its whole length.
const pushChunk = 5000

// Tenant is the organization queued jobs belong to and its share of the
// lane (docs/design/0020-fair-share.md).
type Tenant struct {
	// Org is the organization id.
	Org string
	// Weight is the organization's share weight (apiv1.ShareWeight); 0
	// keeps the weight Redis holds for it (1 if none), for callers that
	// push an id back without a database read.
	Weight int
}

func (t Tenant) validate() error {
	if t.Org == "" || strings.Contains(t.Org, ":") {
		return fmt.Errorf("organization id %q: want a non-empty id without ':'", t.Org)
	}
	if t.Weight < 0 {
		return fmt.Errorf("share weight %d of organization %s: want 0 or more", t.Weight, t.Org)
	}
	return nil
}

// errNoTenant is returned for a push without a usable organization.
var errNoTenant = errors.New("queue: push needs the job's organization")

// Push adds a job id of t's organization to its pool's lane. Within the
// organization, urgent jobs (priority > 0) go next; across organizations
// the claim takes turns by weight.
func (q *Queue) Push(ctx context.Context, pool, lane string, t Tenant, jobID string, priority int) error {
	if err := q.push(ctx, pool, lane, t, priority > 0, []string{jobID}, nil); err != nil {
		return fmt.Errorf("push job %s onto %s: %w", jobID, q.keys.Queue(pool, lane), err)
	}
	return nil
}

// PushMany pushes ids of one organization onto a pool's lane, in one round
// trip per few thousand ids, in order (the first is claimed first).
func (q *Queue) PushMany(ctx context.Context, pool, lane string, t Tenant, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), pushChunk)]
		if err := q.push(ctx, pool, lane, t, false, chunk, nil); err != nil {
			return fmt.Errorf("push %d ids onto %s: %w", len(ids), q.keys.Queue(pool, lane), err)
		}
		ids = ids[len(chunk):]
	}
	return nil
}

// push runs pushScript; a non-nil event is published on the events
// channel after the push.
func (q *Queue) push(ctx context.Context, pool, lane string, t Tenant, urgent bool, ids []string, event []byte) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %w", errNoTenant, err)
	}
	if len(ids) == 0 {
		return nil
	}
	keys, args := q.pushArgs(pool, lane, t, urgent, ids, event)
	return pushScript.Run(ctx, q.rdb, keys, args...).Err()
}

// pushArgs are pushScript's keys and arguments.
func (q *Queue) pushArgs(pool, lane string, t Tenant, urgent bool, ids []string, event []byte) (keys []string, args []any) {
	flag := "0"
	if urgent {
		flag = "1"
	}
	channel, msg := "", ""
	if event != nil {
		channel, msg = q.keys.Events(), string(event)
	}
	args = make([]any, 0, len(ids)+6)
	args = append(args, t.Org, t.Weight, flag, channel, msg, q.keys.Wake())
	for _, id := range ids {
		args = append(args, id)
	}
	return []string{q.keys.Queue(pool, lane), q.keys.OrgQueue(pool, lane, t.Org), q.keys.Orgs(pool, lane), q.keys.Shares(pool, lane)}, args
}

// JobPush is one job of PushPublishMany: its lane, organization, id,
// priority and event.
type JobPush struct {
	Pool, Lane string
	Tenant     Tenant
	JobID      string
	Priority   int
	Event      []byte
}

// PushPublishMany makes each push as Push would, then publishes its event
// (a nil one publishes nothing): the submit path queues committed jobs and
// announces them (job.queued). All go in one round trip: separate script
// calls in one pipeline, not one transaction. For each, either both happen
// or, when Redis fails, neither (as far as the caller can tell: an error
// after the script ran is indistinguishable from one before); the queue
// reconciler pushes a job that is not on its list, and live subscribers
// miss the event, as with a failed Publish. Each push has its own error;
// the batch never fails as a whole, so none is made twice.
func (q *Queue) PushPublishMany(ctx context.Context, pushes []JobPush) []error {
	errs := make([]error, len(pushes))
	valid := make([]int, 0, len(pushes))
	for i, p := range pushes {
		if err := p.Tenant.validate(); err != nil {
			errs[i] = fmt.Errorf("push and announce job %s: %w: %w", p.JobID, errNoTenant, err)
			continue
		}
		valid = append(valid, i)
	}
	cmds := q.runEach(ctx, pushScript, len(valid), func(pipe redis.Pipeliner, j int) *redis.Cmd {
		p := pushes[valid[j]]
		keys, args := q.pushArgs(p.Pool, p.Lane, p.Tenant, p.Priority > 0, []string{p.JobID}, p.Event)
		return pushScript.EvalSha(ctx, pipe, keys, args...)
	})
	for j, cmd := range cmds {
		p := pushes[valid[j]]
		if err := cmd.Err(); err != nil {
			errs[valid[j]] = fmt.Errorf("push and announce job %s onto %s: %w", p.JobID, q.keys.Queue(p.Pool, p.Lane), err)
		}
	}
	return errs
}

// Members lists the ids queued on a pool's lane: those on the lists of the
// organizations in its turn order (the reconciler compares them with
// Postgres; Repair first puts back organizations whose lists lost their
// place).
func (q *Queue) Members(ctx context.Context, pool, lane string) ([]string, error) {
	orgs, err := q.rdb.ZRange(ctx, q.keys.Orgs(pool, lane), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("organizations of %s: %w", q.keys.Queue(pool, lane), err)
	}
	pipe := q.rdb.Pipeline()
	lists := make([]*redis.StringSliceCmd, len(orgs))
	for i, org := range orgs {
		lists[i] = pipe.LRange(ctx, q.keys.OrgQueue(pool, lane, org), 0, -1)
	}
	if len(orgs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list the organizations' ids of %s: %w", q.keys.Queue(pool, lane), err)
		}
	}
	var ids []string
	for _, l := range lists {
		ids = append(ids, l.Val()...)
	}
	return ids, nil
}

// ShareWeighter reads organizations' fair-share weights (*store.Store
// implements it).
type ShareWeighter interface {
	ShareWeights(ctx context.Context, orgs []uuid.UUID) (map[uuid.UUID]int, error)
}

// Tenants returns each organization's Tenant with its weight read from w,
// in one read. If the read fails every weight is 0 (Redis keeps the
// weights it holds) and the error is returned as well: a caller pushes
// anyway, because a job with a stale weight is better than a job not
// queued, and warns.
func Tenants(ctx context.Context, w ShareWeighter, orgs []uuid.UUID) (map[uuid.UUID]Tenant, error) {
	out := make(map[uuid.UUID]Tenant, len(orgs))
	for _, o := range orgs {
		out[o] = Tenant{Org: o.String()}
	}
	if len(orgs) == 0 {
		return out, nil
	}
	weights, err := w.ShareWeights(ctx, orgs)
	if err != nil {
		return out, fmt.Errorf("read share weights of %d organizations: %w", len(orgs), err)
	}
	for o, wt := range weights {
		if t, ok := out[o]; ok {
			t.Weight = wt
			out[o] = t
		}
	}
	return out, nil
}
