package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Offer hands a job that a submission in this process has just committed
// as queued (id, of organization org, on lane of pool) to a claim of that
// pool and lane waiting here, and reports whether one took it. Such a
// claim found the lane's list empty when it last popped, so no job waits
// ahead of this one (save one pushed in the moments its wake takes to
// arrive): the job skips the push, the wake and the pop, two Redis round
// trips, and the claim makes it running with its usual statement, which
// checks every condition a popped id's claim does and the pool's pause in
// Postgres (the pop script's gate is not crossed). A claim that cannot
// keep it (its pod left, the pool was paused meanwhile) passes it to the
// next waiter or pushes it onto the lane's list, as the caller does when
// Offer says false; a claim that is lost with its process leaves the job
// queued in Postgres, where the queue reconciler finds it, as it finds a
// job whose push failed.
//
// announce, when set, runs once, when a claim has taken the job and
// before the claim can see it: there the caller posts the job's queued
// event, which then goes out before its started event.
func (c *Coordinator) Offer(pool, lane, org, id string, announce func()) bool {
	if !c.wakeups.offer(c.queue.Keys().Queue(pool, lane), handed{pool: pool, lane: lane, id: id, org: org}, announce) {
		return false
	}
	c.metrics.ClaimHandoffs.Inc()
	return true
}

// Reserve takes, for a submission about to commit a job on lane of pool,
// the oldest claim of that pool and lane that waits here idle (its last
// pop found the lane empty, and no push has woken it since), and returns
// the claim the submission's statement is to insert its job claimed by
// (store.NewJob.Claim): that claim's worker, a fresh claim token and its
// lease. The job then costs no claim statement at all: it is running from
// its first commit, and the claim readies it for its pod as if its own
// statement had claimed it (design 0019, "Submissions inserted claimed").
// Nil when no such claim waits, or when org (the submitting
// organization) may not use pool: a tenant naming another's pool must not
// hold that tenant's claims up, even for one statement.
//
// settle must be called once the statement has run, whatever came of it,
// with the job it committed (created false when it committed none, an
// idempotent replay or an error): a job inserted claimed goes to the
// claim; a job inserted queued (its pool paused, the worker drained
// meanwhile, a submission that went the long way) is handed to the claim
// to claim as Offer hands one; and with none the claim is woken to pop.
// settle reports whether the job went to a claim; when it did not, the
// caller pushes it. announce, when set, runs as for Offer: once, before
// the claim can see the job. Until settle the claim waits, even past its
// own wait (at most reservedWait), so that a job claimed for it is never
// left without a pod: when its pod is gone the job goes back to its queue
// at once (unlessGone).
func (c *Coordinator) Reserve(ctx context.Context, pool, lane, org string) (claim *store.JobClaim, settle func(job store.Job, created bool, announce func()) bool) {
	laneKey := c.queue.Keys().Queue(pool, lane)
	if !c.usableBy(ctx, pool, org, laneKey) {
		return nil, nil
	}
	ch, worker, ok := c.wakeups.reserve(laneKey)
	if !ok {
		return nil, nil
	}
	token := newClaimToken()
	now := c.cfg.Clock.Now()
	claim = &store.JobClaim{Worker: worker, TokenHash: hashToken(token), Now: now, LeaseUntil: now.Add(c.cfg.Lease)}
	return claim, func(job store.Job, created bool, announce func()) bool {
		if !created {
			c.wakeups.settle(ch, handed{}, nil)
			return false
		}
		h := handed{pool: job.PoolID, lane: job.Lane, id: job.ID.String(), org: job.OrgID.String()}
		if job.Status == store.JobRunning && job.WorkerID != nil && *job.WorkerID == worker.ID {
			h.claimed, h.token = &store.ClaimedJob{Job: job, QueuedAt: job.CreatedAt}, token
		}
		if c.wakeups.settle(ch, h, announce) {
			c.metrics.ClaimHandoffs.Inc()
			return true
		}
		if h.claimed == nil {
			return c.Offer(h.pool, h.lane, h.org, h.id, announce)
		}
		// The claim gave up waiting: its job goes back to its queue.
		if announce != nil {
			announce()
		}
		ctx, cancel := context.WithTimeout(context.Background(), handedBackTimeout)
		defer cancel()
		c.handBack(ctx, job, token, handedBackMsg)
		return true
	}
}

// usableBy reports whether organization org may submit to pool: the pool
// is shared or org's own. A pool with no claim waiting on laneKey is not
// looked up (nothing could be reserved), so made-up pool names cost no
// query; a failed lookup answers false, and the submission is handed over
// after its statement instead, if at all.
func (c *Coordinator) usableBy(ctx context.Context, pool, org, laneKey string) bool {
	owner, ok := c.poolOrgs.Load(pool)
	if !ok {
		if c.wakeups.waiters(laneKey) == 0 {
			return false
		}
		id, err := c.store.PoolOrg(ctx, pool)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				c.log.WarnContext(ctx, "a pool's organization could not be read; its submissions are not inserted claimed",
					slog.String("pool_id", pool), slog.Any("error", err))
			}
			return false
		}
		o := ""
		if id != nil {
			o = id.String()
		}
		owner, _ = c.poolOrgs.LoadOrStore(pool, o)
	}
	return owner == "" || owner == org
}

// handedBackTimeout bounds pushing a handed job nobody kept onto its list.
const handedBackTimeout = 10 * time.Second

// pushHanded pushes a handed job that no claim kept onto its lane's list.
func (c *Coordinator) pushHanded(h handed) {
	ctx, cancel := context.WithTimeout(context.Background(), handedBackTimeout)
	defer cancel()
	c.pushBack(ctx, h, "a job handed to a claim that left was not pushed to its queue")
}

// pushBack puts an id that left Redis, but was claimed by nobody, back on
// its lane's list: next within its organization, with the weight Redis
// holds for the organization. Should that fail, failed is logged and the
// queue reconciler pushes it (the job is queued in Postgres).
func (c *Coordinator) pushBack(ctx context.Context, h handed, failed string) {
	if err := c.queue.Push(ctx, h.pool, h.lane, queue.Tenant{Org: h.org}, h.id, 1); err != nil {
		c.log.WarnContext(ctx, failed+"; the queue reconciler will push it, check redis",
			slog.String("job_id", h.id), slog.String("pool_id", h.pool), slog.Any("error", err))
	}
}
