package apiserver

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objscope"
)

func (s *Server) listStorageGrants(c *fiber.Ctx) error {
	orgID, err := pathID(c, "organization")
	if err != nil {
		return err
	}
	if _, err := s.store.GetOrg(c.UserContext(), orgID); err != nil {
		return notFoundOr(err, "organization")
	}
	gs, err := s.store.ListStorageGrants(c.UserContext(), orgID)
	if err != nil {
		return err
	}
	return c.JSON(listOf(gs, storageGrantOut))
}

func (s *Server) createStorageGrant(c *fiber.Ctx) error {
	orgID, err := pathID(c, "organization")
	if err != nil {
		return err
	}
	var req apiv1.StorageGrantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	g := objscope.Grant{Bucket: req.Bucket, Prefix: req.Prefix}
	if errs := s.scopes.Storage().CheckGrant(g); len(errs) > 0 {
		return invalid(errs)
	}
	p := principal(c)
	sg, err := s.store.CreateStorageGrant(c.UserContext(), orgID, g, p.UserID)
	if err != nil {
		return notFoundOr(err, "organization")
	}
	s.log.InfoContext(c.UserContext(), "storage grant created", slog.String("org_id", orgID.String()),
		slog.String("bucket", sg.Bucket), slog.String("prefix", sg.Prefix), slog.String("user_id", p.UserID.String()))
	return c.Status(fiber.StatusCreated).JSON(storageGrantOut(sg))
}

func (s *Server) deleteStorageGrant(c *fiber.Ctx) error {
	orgID, err := pathID(c, "organization")
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Params("grant_id"))
	if err != nil {
		return notFound("storage grant")
	}
	if err := s.store.DeleteStorageGrant(c.UserContext(), orgID, id); err != nil {
		return notFoundOr(err, "storage grant")
	}
	s.log.InfoContext(c.UserContext(), "storage grant revoked; queued jobs reading from it fail at claim",
		slog.String("org_id", orgID.String()), slog.String("grant_id", id.String()), slog.String("user_id", principal(c).UserID.String()))
	return c.SendStatus(fiber.StatusNoContent)
}
