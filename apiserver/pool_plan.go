package apiserver

import (
	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// PoolPlanner renders the Kubernetes objects the operator applies for a
// pool, secrets redacted; *operator.Planner implements it. It is an
// interface so that this package does not import the operator (whose
// encoder dependency imports the dispatcher, whose tests import this
// package).
type PoolPlanner interface {
	// PlanObjects returns the objects in apply order.
	PlanObjects(p store.Pool) ([]map[string]any, error)
	// PlanYAML returns them as the multi-document YAML `mpegflow pools
	// plan` prints.
	PlanYAML(p store.Pool) ([]byte, error)
}

// yamlMediaType is what GET /v1/pools/{id}/plan answers when asked for YAML:
// the multi-document YAML `mpegflow pools plan` prints, byte for byte.
const yamlMediaType = "application/yaml"

// poolPlan answers the objects the operator applies for a pool the caller
// may read (the shared pool included; another organization's pool is 404),
// rendered by the operator's own code with the worker token redacted. JSON
// by default, YAML for Accept: application/yaml.
func (s *Server) poolPlan(c *fiber.Ctx) error {
	if s.cfg.Planner == nil {
		return noPlanner()
	}
	p, err := s.store.GetPool(c.UserContext(), readScope(principal(c)), c.Params("id"))
	if err != nil {
		return notFoundOr(err, "pool")
	}
	return s.sendPlan(c, p)
}

// noPlanner answers a plan asked of a server without the operator's
// configuration.
func noPlanner() error {
	return problem(fiber.StatusServiceUnavailable, "plan-unavailable",
		"this server has no operator configuration; set MPEGFLOW_ENCODER_IMAGE and the other variables of `mpegflow operator` on the API server to show pool plans")
}

// previewPoolPlan answers the plan of a pool with the PoolRequest body's
// changes, checked as PATCH /v1/pools/{id} checks them (validation, the
// platform policy), without saving them: what the operator would apply
// once they are saved.
func (s *Server) previewPoolPlan(c *fiber.Ctx) error {
	if s.cfg.Planner == nil {
		return noPlanner()
	}
	p, err := s.editPool(c, s.store.PreviewGuardedPool)
	if err != nil {
		return err
	}
	return s.sendPlan(c, p)
}

// sendPlan answers p's plan as JSON, or as YAML for Accept: application/yaml.
func (s *Server) sendPlan(c *fiber.Ctx, p store.Pool) error {
	if c.Accepts(fiber.MIMEApplicationJSON, yamlMediaType) == yamlMediaType {
		b, err := s.cfg.Planner.PlanYAML(p)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, yamlMediaType)
		return c.Send(b)
	}
	objs, err := s.cfg.Planner.PlanObjects(p)
	if err != nil {
		return err
	}
	return c.JSON(listOf(objs, func(o map[string]any) apiv1.PlanObject { return o }))
}
