package apiserver

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// An admin can hand a member an API key directly (issueMemberKey: the key is
// in the response, once) or an invitation the member exchanges for one
// (invitations.go). Either way the key belongs to the member, records its
// issuer, and never acts above the role it was issued with.

// checkKeyRole picks the role of a key or invitation made for m by actor:
// requested if given, else m's role; never above either of them.
func checkKeyRole(errs *validation.Errors, actor auth.Role, m store.Member, requested string) auth.Role {
	if requested == "" {
		return m.Role
	}
	r := checkGrant(errs, actor, requested)
	if r != "" && !m.Role.AtLeast(r) {
		errs.Add("role", "must not be above the member's role (%s)", m.Role)
	}
	return r
}

func checkKeyName(errs *validation.Errors, name string) string {
	name = strings.TrimSpace(name)
	if l := len(name); l == 0 || l > 100 {
		errs.Add("name", "must be 1 to 100 characters")
	}
	return name
}

func (s *Server) issueMemberKey(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	var req apiv1.IssueKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	var errs validation.Errors
	name := checkKeyName(&errs, req.Name)
	role := checkKeyRole(&errs, p.Role, m, req.Role)
	if len(errs) > 0 {
		return invalid(errs)
	}
	key, rec, err := s.store.IssueKey(c.UserContext(), p.OrgID, m.UserID, p.UserID, name, role)
	if err != nil {
		return notFoundOr(err, "member")
	}
	s.log.InfoContext(c.UserContext(), "api key issued for a member", slog.String("org_id", p.OrgID.String()),
		slog.String("user_id", m.UserID.String()), slog.String("issuer_id", p.UserID.String()),
		slog.String("key_id", rec.ID.String()), slog.String("role", string(role)))
	return c.Status(fiber.StatusCreated).JSON(apiv1.APIKeyCreated{APIKey: apiKeyOut(rec), Key: key})
}

func (s *Server) listMemberKeys(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	ks, err := s.store.ListKeys(c.UserContext(), principal(c).OrgID, m.UserID)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(ks, store.Page{Limit: -1}, func(k store.APIKey) (time.Time, uuid.UUID) { return k.CreatedAt, k.ID }, apiKeyOut))
}

func (s *Server) revokeMemberKey(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	keyID, err := uuid.Parse(c.Params("key_id"))
	if err != nil {
		return notFound("api key")
	}
	k, err := s.store.RevokeKey(c.UserContext(), principal(c).OrgID, m.UserID, keyID, nil)
	if err != nil {
		return notFoundOr(err, "api key")
	}
	s.keysChanged(c.UserContext(), principal(c).OrgID)
	return c.JSON(apiKeyOut(k))
}
