package apiserver

import (
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// checkMemberName validates the name an organization gives a member; it is
// stored trimmed and may be empty.
func checkMemberName(errs *validation.Errors, name string) string {
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		errs.Add("name", "must be at most 200 characters")
	}
	return name
}

// checkGrant stops privilege escalation: nobody grants a role above their
// own or changes a member who outranks them.
func checkGrant(errs *validation.Errors, actor auth.Role, role string) auth.Role {
	r, err := auth.ParseRole(role)
	if err != nil {
		errs.Add("role", "%s", err.Error())
		return ""
	}
	if !actor.AtLeast(r) {
		errs.Add("role", "you cannot grant a role above your own (%s)", actor)
	}
	return r
}

func (s *Server) listMembers(c *fiber.Ctx) error {
	ms, err := s.store.ListMembers(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []store.Member{}
	}
	return c.JSON(listOf(ms, memberOut))
}

func (s *Server) addMember(c *fiber.Ctx) error {
	var req apiv1.MemberRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	var errs validation.Errors
	email := strings.TrimSpace(req.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		errs.Add("email", "must be an email address such as ada@example.com")
	}
	name := checkMemberName(&errs, req.Name)
	role := checkGrant(&errs, p.Role, req.Role)
	if len(errs) > 0 {
		return invalid(errs)
	}
	m, err := s.store.AddMember(c.UserContext(), p.OrgID, email, name, role)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(memberOut(m))
}

// targetMember loads the member a request names and refuses changes to
// members who outrank the caller.
func (s *Server) targetMember(c *fiber.Ctx) (store.Member, error) {
	id, err := pathID(c, "member")
	if err != nil {
		return store.Member{}, err
	}
	p := principal(c)
	m, err := s.store.GetMember(c.UserContext(), p.OrgID, id)
	if err != nil {
		return store.Member{}, notFoundOr(err, "member")
	}
	if !p.Role.AtLeast(m.Role) {
		return store.Member{}, problem(fiber.StatusForbidden, "forbidden", "you cannot manage a member whose role ("+string(m.Role)+") is above yours")
	}
	return m, nil
}

func (s *Server) updateMember(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	var req apiv1.MemberPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var (
		errs  validation.Errors
		patch store.MemberPatch
	)
	if req.Role == nil && req.Name == nil {
		errs.Add("role", "send role, name or both")
	}
	if req.Role != nil {
		role := checkGrant(&errs, principal(c).Role, *req.Role)
		patch.Role = &role
	}
	if req.Name != nil {
		name := checkMemberName(&errs, *req.Name)
		patch.Name = &name
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	out, err := s.store.UpdateMember(c.UserContext(), principal(c).OrgID, m.UserID, patch)
	if err != nil {
		return notFoundOr(err, "member")
	}
	if patch.Role != nil {
		s.keysChanged(c.UserContext(), principal(c).OrgID)
	}
	return c.JSON(memberOut(out))
}

func (s *Server) removeMember(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	if err := s.store.RemoveMember(c.UserContext(), principal(c).OrgID, m.UserID); err != nil {
		return notFoundOr(err, "member")
	}
	s.keysChanged(c.UserContext(), principal(c).OrgID)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listKeys(c *fiber.Ctx) error {
	p := principal(c)
	ks, err := s.store.ListKeys(c.UserContext(), p.OrgID, p.UserID)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(ks, store.Page{Limit: -1}, func(k store.APIKey) (time.Time, uuid.UUID) { return k.CreatedAt, k.ID }, apiKeyOut))
}

func (s *Server) createKey(c *fiber.Ctx) error {
	var req apiv1.APIKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if l := len(strings.TrimSpace(req.Name)); l == 0 || l > 100 {
		return invalidField("name", "must be 1 to 100 characters")
	}
	p := principal(c)
	// A capped key makes only keys with its own cap: never one that may do more.
	key, rec, err := s.store.CreateKey(c.UserContext(), p.OrgID, p.UserID, strings.TrimSpace(req.Name), p.KeyRole)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(apiv1.APIKeyCreated{APIKey: apiKeyOut(rec), Key: key})
}

func (s *Server) revokeKey(c *fiber.Ctx) error {
	id, err := pathID(c, "api key")
	if err != nil {
		return err
	}
	p := principal(c)
	k, err := s.store.RevokeKey(c.UserContext(), p.OrgID, p.UserID, id, p.KeyRole)
	if errors.Is(err, store.ErrKeyAboveCap) {
		return problem(fiber.StatusForbidden, "forbidden", "this key may do at most what a "+string(*p.KeyRole)+" may; it cannot revoke a key that may do more")
	}
	if err != nil {
		return notFoundOr(err, "api key")
	}
	s.keysChanged(c.UserContext(), p.OrgID)
	return c.JSON(apiKeyOut(k))
}
