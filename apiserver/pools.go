package apiserver

import (
	"context"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// poolRequest creates a pool (absent fields take defaults) or patches one
// (absent fields stay as they are).
type poolRequest struct {
	Name                   *string             `json:"name,omitempty"`
	Accelerator            *string             `json:"accelerator,omitempty"`
	MinReplicas            *int                `json:"min_replicas,omitempty"`
	MaxReplicas            *int                `json:"max_replicas,omitempty"`
	PollingIntervalSeconds *int                `json:"polling_interval_seconds,omitempty"`
	TargetQueueLength      *int                `json:"target_queue_length,omitempty"`
	BackfillMaxReplicas    *int                `json:"backfill_max_replicas,omitempty"`
	CronWindows            *[]store.CronWindow `json:"cron_windows,omitempty"`
	Resources              *store.Resources    `json:"resources,omitempty"`
	NodeSelector           *map[string]string  `json:"node_selector,omitempty"`
	Tolerations            *[]store.Toleration `json:"tolerations,omitempty"`
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (r poolRequest) apply(set *store.PoolSettings) {
	setIf(&set.Name, r.Name)
	setIf(&set.Accelerator, r.Accelerator)
	setIf(&set.MinReplicas, r.MinReplicas)
	setIf(&set.MaxReplicas, r.MaxReplicas)
	setIf(&set.PollingIntervalSeconds, r.PollingIntervalSeconds)
	setIf(&set.TargetQueueLength, r.TargetQueueLength)
	setIf(&set.BackfillMaxReplicas, r.BackfillMaxReplicas)
	setIf(&set.CronWindows, r.CronWindows)
	setIf(&set.Resources, r.Resources)
	setIf(&set.NodeSelector, r.NodeSelector)
	setIf(&set.Tolerations, r.Tolerations)
	if set.CronWindows == nil {
		set.CronWindows = []store.CronWindow{}
	}
	if set.NodeSelector == nil {
		set.NodeSelector = map[string]string{}
	}
	if set.Tolerations == nil {
		set.Tolerations = []store.Toleration{}
	}
}

// poolResponse is a pool with its live queue depths.
type poolResponse struct {
	store.Pool
	QueueDepth map[string]int64 `json:"queue_depth"`
}

func (s *Server) withDepth(ctx context.Context, p store.Pool) (poolResponse, error) {
	out := poolResponse{Pool: p, QueueDepth: map[string]int64{}}
	for _, lane := range queue.Lanes {
		n, err := s.queue.Len(ctx, p.ID, lane)
		if err != nil {
			return poolResponse{}, err
		}
		out.QueueDepth[lane] = n
	}
	return out, nil
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
	if ps == nil {
		ps = []store.Pool{}
	}
	return c.JSON(list[store.Pool]{Items: ps})
}

func (s *Server) createPool(c *fiber.Ctx) error {
	var req poolRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	set := store.DefaultPoolSettings()
	req.apply(&set)
	if err := set.Validate(); err != nil {
		return err
	}
	p, err := s.store.CreatePool(c.UserContext(), principal(c).OrgID, set)
	if err != nil {
		return err
	}
	resp, err := s.withDepth(c.UserContext(), p)
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
	resp, err := s.withDepth(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *Server) updatePool(c *fiber.Ctx) error {
	var req poolRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := s.store.UpdatePool(c.UserContext(), writeScope(principal(c)), c.Params("id"), func(set *store.PoolSettings) error {
		req.apply(set)
		return set.Validate()
	})
	if err != nil {
		return notFoundOr(err, "pool")
	}
	resp, err := s.withDepth(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *Server) setPaused(c *fiber.Ctx, paused bool) error {
	status, event := "active", "pool.resumed"
	if paused {
		status, event = "paused", "pool.paused"
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
	resp, err := s.withDepth(ctx, p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *Server) pausePool(c *fiber.Ctx) error  { return s.setPaused(c, true) }
func (s *Server) resumePool(c *fiber.Ctx) error { return s.setPaused(c, false) }

func (s *Server) deletePool(c *fiber.Ctx) error {
	id := c.Params("id")
	if id == store.DefaultPoolID {
		return problem(fiber.StatusConflict, "conflict", "the shared default pool cannot be deleted; pause it instead")
	}
	ctx := c.UserContext()
	if err := s.store.DeletePool(ctx, principal(c).OrgID, id); err != nil {
		return notFoundOr(err, "pool")
	}
	// Committed; what Redis keeps of the pool the queue reconciler drops
	// should this fail.
	if err := s.queue.DropPool(ctx, id); err != nil {
		s.log.WarnContext(ctx, "pool deleted but its Redis keys remain; the queue reconciler drops them within its period, check Redis",
			slog.String("pool_id", id), slog.Any("error", err))
	}
	return c.SendStatus(fiber.StatusNoContent)
}
