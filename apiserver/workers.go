package apiserver

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/internal/auth"
)

func (s *Server) listWorkers(c *fiber.Ctx) error {
	p := principal(c)
	ws, err := s.store.ListWorkers(c.UserContext(), p.OrgID, p.Role == auth.SuperAdmin)
	if err != nil {
		return err
	}
	return c.JSON(listOf(ws, workerOut))
}

func (s *Server) drainWorker(c *fiber.Ctx) error {
	w, err := s.store.DrainWorker(c.UserContext(), c.Params("id"))
	if err != nil {
		return notFoundOr(err, "worker")
	}
	return c.JSON(workerOut(w))
}

func (s *Server) evictWorker(c *fiber.Ctx) error {
	w, jobs, err := s.store.EvictWorker(c.UserContext(), c.Params("id"))
	if err != nil {
		return notFoundOr(err, "worker")
	}
	ctx := c.UserContext()
	for _, j := range jobs {
		s.dispatch(ctx, j, "job.requeued", s.tenant(ctx, principal(c), j.OrgID))
	}
	return c.JSON(workerOut(w))
}
