package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/mpegflow/mpegflow/internal/queue"
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
