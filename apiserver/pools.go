package apiserver

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/schedule"
	"github.com/mpegflow/mpegflow/internal/store"
)

// withDepth maps a pool with its live queue depth per lane and what it is
// running for orgID.
func (s *Server) withDepth(ctx context.Context, orgID uuid.UUID, p store.Pool) (apiv1.Pool, error) {
	depth := map[string]int64{}
	for _, lane := range apiv1.Lanes {
		n, err := s.queue.Len(ctx, p.ID, lane)
		if err != nil {
			return apiv1.Pool{}, err
		}
		depth[lane] = n
	}
	activity, err := s.store.PoolActivity(ctx, orgID, p)
	if err != nil {
		return apiv1.Pool{}, err
	}
	out := poolOut(p, depth)
	out.InFlight, out.Workers = &activity.InFlight, activity.Workers
	out.NextChange = nextChange(p, s.cfg.Clock.Now())
	return out, nil
}

// nextChange is the next edge of p's pause windows after now, as the
// Schedule Evaluator will apply it; nil when p has none.
func nextChange(p store.Pool, now time.Time) *apiv1.PoolChange {
	ws, errs := schedule.Parse(p.Wire().PauseWindows)
	if errs != nil {
		return nil // validated on the way in; nothing to show
	}
	e, ok := ws.Next(now)
	if !ok {
		return nil
	}
	return &apiv1.PoolChange{At: e.At, Action: string(e.Action)}
}

// readScope: everyone sees their organization's pools and the shared pool.
func readScope(p store.Principal) store.PoolScope {
	return store.PoolScope{OrgID: p.OrgID, Shared: true}
}

// writeScope: only the platform (SuperAdmin) changes the shared pool.
func writeScope(p store.Principal) store.PoolScope {
	return store.PoolScope{OrgID: p.OrgID, Shared: p.Role == auth.SuperAdmin}
}

func (s *Server) listPools(c *fiber.Ctx) error {
	ps, err := s.store.ListPools(c.UserContext(), readScope(principal(c)))
	if err != nil {
		return err
	}
	return c.JSON(listOf(ps, poolListItem))
}

func (s *Server) createPool(c *fiber.Ctx) error {
	var req apiv1.PoolRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	set := apiv1.DefaultPoolSettings()
	req.Apply(&set)
	if err := store.PoolSettingsFromWire(set).Validate(); err != nil {
		return err
	}
	ctx := c.UserContext()
	policy, err := s.platformPolicy(ctx)
	if err != nil {
		return err
	}
	orgID := principal(c).OrgID
	p, err := s.store.CreateGuardedPool(ctx, orgID, store.PoolSettingsFromWire(set), policyGuard(policy.Policy, orgID.String()))
	if err != nil {
		return err
	}
	s.syncPolicyViolations(ctx, new(principal(c).OrgID))
	resp, err := s.withDepth(c.UserContext(), principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}

func (s *Server) getPool(c *fiber.Ctx) error {
	p, err := s.store.GetPool(c.UserContext(), readScope(principal(c)), c.Params("id"))
	if err != nil {
		return notFoundOr(err, "pool")
	}
	resp, err := s.withDepth(c.UserContext(), principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *Server) updatePool(c *fiber.Ctx) error {
	p, err := s.editPool(c, s.store.UpdateGuardedPool)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	s.syncPolicyViolations(ctx, new(principal(c).OrgID))
	resp, err := s.withDepth(ctx, principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

// poolEditor is UpdateGuardedPool or PreviewGuardedPool.
type poolEditor func(ctx context.Context, sc store.PoolScope, id string, edit func(*store.PoolSettings) error, guard store.PoolGuard) (store.Pool, error)

// editPool applies the PoolRequest body to the pool of the path through
// apply, validated and checked against the platform policy.
func (s *Server) editPool(c *fiber.Ctx, apply poolEditor) (store.Pool, error) {
	var req apiv1.PoolRequest
	if err := decodeJSON(c, &req); err != nil {
		return store.Pool{}, err
	}
	ctx := c.UserContext()
	policy, err := s.platformPolicy(ctx)
	if err != nil {
		return store.Pool{}, err
	}
	// A SuperAdmin may change the shared pool (which is not guarded) and
	// its own organization's pools (which are).
	guard := policyGuard(policy.Policy, principal(c).OrgID.String())
	p, err := apply(ctx, writeScope(principal(c)), c.Params("id"), func(set *store.PoolSettings) error {
		w := set.Wire()
		req.Apply(&w)
		next := store.PoolSettingsFromWire(w)
		if err := next.Validate(); err != nil {
			return err
		}
		*set = next
		return nil
	}, guard)
	if err != nil {
		return store.Pool{}, notFoundOr(err, "pool")
	}
	return p, nil
}

func (s *Server) setPaused(c *fiber.Ctx, paused bool) error {
	status, event := apiv1.PoolActive, apiv1.EventPoolResumed
	if paused {
		status, event = apiv1.PoolPaused, apiv1.EventPoolPaused
	}
	ctx := c.UserContext()
	p, err := s.store.SetPoolStatus(ctx, writeScope(principal(c)), c.Params("id"), status)
	if err != nil {
		return notFoundOr(err, "pool")
	}
	// Committed; now the instant half. Should Redis fail, the queue
	// reconciler sets the key from the row within its period.
	if err := s.queue.SetPaused(ctx, p.ID, paused); err != nil {
		s.log.WarnContext(ctx, "pool status recorded but its Redis pause key not changed; the queue reconciler fixes it within its period, check Redis",
			slog.String("pool_id", p.ID), slog.String("status", status), slog.Any("error", err))
	}
	s.emit(ctx, events.Event{Type: event, OrgID: p.OrgID, PoolID: p.ID})
	resp, err := s.withDepth(ctx, principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *Server) pausePool(c *fiber.Ctx) error  { return s.setPaused(c, true) }
func (s *Server) resumePool(c *fiber.Ctx) error { return s.setPaused(c, false) }

func (s *Server) deletePool(c *fiber.Ctx) error {
	id := c.Params("id")
	if id == apiv1.DefaultPoolID {
		return problem(fiber.StatusConflict, "conflict", "the shared default pool cannot be deleted; pause it instead")
	}
	ctx := c.UserContext()
	if err := s.store.DeletePool(ctx, principal(c).OrgID, id); err != nil {
		return notFoundOr(err, "pool")
	}
	s.syncPolicyViolations(ctx, new(principal(c).OrgID)) // the organization's other pools may fit again
	// Committed; what Redis keeps of the pool the queue reconciler drops
	// should this fail.
	if err := s.queue.DropPool(ctx, id); err != nil {
		s.log.WarnContext(ctx, "pool deleted but its Redis keys remain; the queue reconciler drops them within its period, check Redis",
			slog.String("pool_id", id), slog.Any("error", err))
	}
	return c.SendStatus(fiber.StatusNoContent)
}
