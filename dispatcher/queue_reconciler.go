package dispatcher

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/mpegflow/mpegflow/internal/store"
)

// reconcileLockKey is the advisory lock that lets one replica reconcile per round.
const reconcileLockKey = 0x6d70_6567_666c_6f77 // "mpegflow"

// ReconcileQueues makes Redis agree with Postgres: pause keys follow the
// pools' status, the keys of deleted pools go, every queued job is on its
// list (a crash between commit and push, or a Redis that lost its data,
// loses nothing), and retries whose delayed-set entry was lost are promoted
// once overdue. Writers commit Postgres first and write Redis after; this
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
		n, err := s.repushQueued(ctx)
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

func (s *Services) repushQueued(ctx context.Context) (int, error) {
	queued, err := s.c.store.QueuedJobs(ctx, s.c.cfg.Clock.Now().Add(-s.cfg.ReconcileGrace))
	if err != nil {
		return 0, err
	}
	byLane := map[lane][]store.QueuedJob{}
	for _, j := range queued {
		k := lane{j.PoolID, j.Lane}
		byLane[k] = append(byLane[k], j)
	}
	pushed := 0
	for k, jobs := range byLane {
		members, err := s.c.queue.Members(ctx, k.pool, k.lane)
		if err != nil {
			return pushed, err
		}
		onList := make(map[string]bool, len(members))
		for _, m := range members {
			onList[m] = true
		}
		var missing []string
		for _, j := range jobs {
			switch {
			case onList[j.ID.String()]:
			case j.Priority > 0: // urgent jobs keep their place at the front
				if err := s.c.queue.Push(ctx, k.pool, k.lane, j.ID.String(), j.Priority); err != nil {
					return pushed, err
				}
				pushed++
			default:
				missing = append(missing, j.ID.String())
			}
		}
		if err := s.c.queue.PushMany(ctx, k.pool, k.lane, missing); err != nil {
			return pushed, err
		}
		pushed += len(missing)
	}
	return pushed, nil
}
