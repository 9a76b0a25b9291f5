package dispatcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// reconcileLockKey is the advisory lock that lets one replica reconcile per round.
const reconcileLockKey = 0x6d70_6567_666c_6f77 // "mpegflow"

// ReconcileQueues makes Redis agree with Postgres: pause keys follow the
// pools' status, the keys of deleted pools go, every queued job is on its
// organization's list of its lane, with the organization's current weight,
// and the list KEDA counts is as long as the ids queued (a crash between
// commit and push, or a Redis that lost its data, loses nothing), and
// retries whose delayed-set entry was lost are promoted once overdue. Writers commit Postgres first and write Redis after; this
// repairs what a failed or crashed Redis write leaves behind.
func (s *Services) ReconcileQueues(ctx context.Context) (int, error) {
	changed := 0
	_, err := s.c.store.TryAdvisoryLock(ctx, reconcileLockKey, func(ctx context.Context) error {
		// Redis first, rows second. Writers commit a row before they
		// write its keys, so a key read before the rows belongs to a pool
		// whose row had committed by then: missing from the rows, the pool
		// was deleted (ids are never reused). A pause or resume committed
		// before the rows are read is written here too, never undone; one
		// committed later can be undone only where Redis already disagreed
		// with the row, and the next round puts that right.
		inRedis, err := s.c.queue.Pools(ctx)
		if err != nil {
			return err
		}
		pools, err := s.c.store.ListAllPools(ctx)
		if err != nil {
			return err
		}
		exists := make(map[string]bool, len(pools))
		for _, p := range pools {
			exists[p.ID] = true
		}
		for _, id := range slices.Sorted(maps.Keys(inRedis)) {
			if !exists[id] {
				if err := s.c.queue.DropPool(ctx, id); err != nil {
					return err
				}
				changed++
			}
		}
		for _, p := range pools {
			want, got := p.Status == "paused", inRedis[p.ID]
			if got != want {
				if err := s.c.queue.SetPaused(ctx, p.ID, want); err != nil {
					return err
				}
				changed++
			}
		}
		ids := make([]string, len(pools))
		for i, p := range pools {
			ids[i] = p.ID
		}
		n, err := s.repushQueued(ctx, ids)
		changed += n
		if err != nil {
			return err
		}
		cutoff := s.c.cfg.Clock.Now().Add(-s.cfg.ReconcileGrace)
		overdue, err := s.c.store.OverdueRetries(ctx, cutoff, s.cfg.Batch)
		if err != nil || len(overdue) == 0 {
			return err
		}
		jobs, err := s.c.store.PromoteRetries(ctx, overdue, s.c.cfg.Clock.Now())
		if err != nil {
			return err
		}
		s.push(ctx, jobs)
		changed += len(jobs)
		return nil
	})
	if err != nil {
		return changed, fmt.Errorf("queue reconciler: %w", err)
	}
	return changed, nil
}

type lane struct{ pool, lane string }

// repushQueued makes every lane's fair-share structure agree with the
// queued rows. It repairs each lane of every pool: organizations with
// queued jobs get their current weights and, if their list lost its place
// in the turn order, that place back; the list KEDA counts is rebuilt when
// its length drifted from the ids queued. Then it pushes the queued jobs
// missing from their organization's list. After a FLUSHALL that rebuilds
// everything, fair share included.
func (s *Services) repushQueued(ctx context.Context, pools []string) (int, error) {
	queued, err := s.c.store.QueuedJobs(ctx, s.c.cfg.Clock.Now().Add(-s.cfg.ReconcileGrace))
	if err != nil {
		return 0, err
	}
	byLane := map[lane]map[uuid.UUID][]store.QueuedJob{}
	for _, p := range pools {
		for _, l := range apiv1.Lanes {
			byLane[lane{p, l}] = map[uuid.UUID][]store.QueuedJob{}
		}
	}
	orgs := map[uuid.UUID]bool{}
	for _, j := range queued {
		k := lane{j.PoolID, j.Lane}
		if byLane[k] == nil {
			byLane[k] = map[uuid.UUID][]store.QueuedJob{}
		}
		byLane[k][j.OrgID] = append(byLane[k][j.OrgID], j)
		orgs[j.OrgID] = true
	}
	tenants, err := queue.Tenants(ctx, s.c.store, slices.Collect(maps.Keys(orgs)))
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, k := range slices.SortedFunc(maps.Keys(byLane), func(a, b lane) int { return cmp.Or(cmp.Compare(a.pool, b.pool), cmp.Compare(a.lane, b.lane)) }) {
		jobsByOrg := byLane[k]
		laneTenants := make([]queue.Tenant, 0, len(jobsByOrg))
		for org := range jobsByOrg {
			laneTenants = append(laneTenants, tenants[org])
		}
		n, err := s.repushLane(ctx, k, jobsByOrg, laneTenants, tenants)
		changed += n
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func (s *Services) repushLane(ctx context.Context, k lane, jobsByOrg map[uuid.UUID][]store.QueuedJob, laneTenants []queue.Tenant, tenants map[uuid.UUID]queue.Tenant) (int, error) {
	changed := 0
	queued, had, err := s.c.queue.Repair(ctx, k.pool, k.lane, laneTenants)
	if err != nil {
		return 0, err
	}
	if queued != had {
		s.c.log.WarnContext(ctx, "rebuilt the queue list KEDA counts: its length differed from the ids queued (redis lost keys or the list was edited); nothing to do unless it recurs",
			slog.String("pool_id", k.pool), slog.String("lane", k.lane), slog.Int64("had", had), slog.Int64("queued", queued))
		changed++
	}
	if len(jobsByOrg) == 0 {
		return changed, nil
	}
	members, err := s.c.queue.Members(ctx, k.pool, k.lane)
	if err != nil {
		return changed, err
	}
	onList := make(map[string]bool, len(members))
	for _, m := range members {
		onList[m] = true
	}
	for org, jobs := range jobsByOrg {
		var missing []string
		for _, j := range jobs {
			switch {
			case onList[j.ID.String()]:
			case j.Priority > 0: // urgent jobs keep their place at the front of their organization
				if err := s.c.queue.Push(ctx, k.pool, k.lane, tenants[org], j.ID.String(), j.Priority); err != nil {
					return changed, err
				}
				changed++
			default:
				missing = append(missing, j.ID.String())
			}
		}
		if err := s.c.queue.PushMany(ctx, k.pool, k.lane, tenants[org], missing); err != nil {
			return changed, err
		}
		changed += len(missing)
	}
	return changed, nil
}
