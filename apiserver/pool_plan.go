package apiserver

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/operator"
)

// planObject is one Kubernetes object of a pool's plan, as the operator
// server-side applies it (apiVersion, kind, metadata, spec or data).
type planObject map[string]any

// yamlMediaType is what GET /v1/pools/{id}/plan answers when asked for YAML:
// the multi-document YAML `mpegflow pools plan` prints, byte for byte.
const yamlMediaType = "application/yaml"

// poolPlan answers the objects the operator applies for a pool the caller
// may read (the shared pool included; another organization's pool is 404),
// rendered by the operator's own code with the worker token redacted. JSON
// by default, YAML for Accept: application/yaml.
func (s *Server) poolPlan(c *fiber.Ctx) error {
	if s.cfg.Plan == nil {
		return problem(fiber.StatusServiceUnavailable, "plan-unavailable",
			"this server has no operator configuration; set MPEGFLOW_ENCODER_IMAGE and the other variables of `mpegflow operator` on the API server to show pool plans")
	}
	p, err := s.store.GetPool(c.UserContext(), readScope(principal(c)), c.Params("id"))
	if err != nil {
		return notFoundOr(err, "pool")
	}
	objs, err := operator.PlanObjects(*s.cfg.Plan, p)
	if err != nil {
		return err
	}
	if c.Accepts(fiber.MIMEApplicationJSON, yamlMediaType) == yamlMediaType {
		b, err := operator.PlanYAML(objs)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, yamlMediaType)
		return c.Send(b)
	}
	items := make([]planObject, len(objs))
	for i, o := range objs {
		items[i] = o
	}
	return c.JSON(list[planObject]{Items: items})
}
