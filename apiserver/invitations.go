package apiserver

import (
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Invitations let an admin give a member a way to get their own API key
// without the admin ever holding it: the admin gets a single-use token
// (shown once), passes it on, and the member exchanges it, unauthenticated,
// for a key. The token is the only credential of that call, so everything
// but a full match answers the same 404; only a holder of a real token
// learns that it expired, was used or was revoked.

const (
	defaultInvitationTTL = 72 * time.Hour
	minInvitationTTL     = 5 * time.Minute
	maxInvitationTTL     = 7 * 24 * time.Hour
)

// invitationOut maps an invitation with its state at the server's clock.
func (s *Server) invitationOut(inv store.Invitation) apiv1.Invitation {
	return invitationOut(inv, s.cfg.Clock.Now())
}

func (s *Server) createInvitation(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	var req apiv1.InvitationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	var errs validation.Errors
	role := checkKeyRole(&errs, p.Role, m, req.Role)
	ttl := defaultInvitationTTL
	if req.ExpiresInSeconds != 0 {
		ttl = time.Duration(req.ExpiresInSeconds) * time.Second
		if ttl < minInvitationTTL || ttl > maxInvitationTTL {
			errs.Add("expires_in_seconds", "must be from %d to %d", int(minInvitationTTL.Seconds()), int(maxInvitationTTL.Seconds()))
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	now := s.cfg.Clock.Now()
	token, inv, err := s.store.CreateInvitation(c.UserContext(), store.NewInvitation{
		OrgID: p.OrgID, UserID: m.UserID, CreatedBy: p.UserID, Role: role, CreatedAt: now, ExpiresAt: now.Add(ttl),
	})
	if err != nil {
		return notFoundOr(err, "member")
	}
	s.log.InfoContext(c.UserContext(), "member invitation created", slog.String("org_id", p.OrgID.String()),
		slog.String("user_id", m.UserID.String()), slog.String("issuer_id", p.UserID.String()),
		slog.String("invitation_id", inv.ID.String()), slog.String("role", string(role)))
	return c.Status(fiber.StatusCreated).JSON(apiv1.InvitationCreated{Invitation: s.invitationOut(inv), Token: token})
}

func (s *Server) listInvitations(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	invs, err := s.store.ListInvitations(c.UserContext(), principal(c).OrgID, m.UserID)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(invs, store.Page{Limit: -1}, func(i store.Invitation) (time.Time, uuid.UUID) { return i.CreatedAt, i.ID }, s.invitationOut))
}

func (s *Server) revokeInvitation(c *fiber.Ctx) error {
	m, err := s.targetMember(c)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Params("invitation_id"))
	if err != nil {
		return notFound("invitation")
	}
	inv, err := s.store.RevokeInvitation(c.UserContext(), principal(c).OrgID, m.UserID, id, s.cfg.Clock.Now())
	if err != nil {
		return notFoundOr(err, "invitation")
	}
	return c.JSON(s.invitationOut(inv))
}

// redeemInvitation is public: the token in the body is its credential.
func (s *Server) redeemInvitation(c *fiber.Ctx) error {
	var req apiv1.RedeemInvitationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	if req.Token == "" {
		errs.Add("token", "required: the invitation token an admin of the organization gave you")
	} else if _, err := auth.InvitationPrefix(req.Token); err != nil {
		errs.Add("token", "not an invitation token (they start with mfi_)")
	}
	name := "invitation"
	if req.Name != "" {
		name = checkKeyName(&errs, req.Name)
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	key, rec, err := s.store.RedeemInvitation(c.UserContext(), req.Token, name, s.cfg.Clock.Now())
	if err != nil {
		return redeemProblem(err)
	}
	s.log.InfoContext(c.UserContext(), "member invitation redeemed", slog.String("org_id", rec.OrgID.String()),
		slog.String("user_id", rec.UserID.String()), slog.String("key_id", rec.ID.String()))
	return c.Status(fiber.StatusCreated).JSON(apiv1.APIKeyCreated{APIKey: apiKeyOut(rec), Key: key})
}

func redeemProblem(err error) error {
	const ask = "; ask an admin of the organization for a new invitation"
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem(fiber.StatusNotFound, "invitation-not-found", "no invitation matches this token"+ask)
	case errors.Is(err, store.ErrInvitationRedeemed):
		return problem(fiber.StatusGone, "invitation-redeemed", "this invitation was already exchanged for an API key"+ask)
	case errors.Is(err, store.ErrInvitationRevoked):
		return problem(fiber.StatusGone, "invitation-revoked", "this invitation was revoked"+ask)
	case errors.Is(err, store.ErrInvitationExpired):
		return problem(fiber.StatusGone, "invitation-expired", "this invitation has expired"+ask)
	case errors.Is(err, store.ErrOrgSuspended):
		return problem(fiber.StatusForbidden, "organization-suspended", "this organization is suspended; contact support")
	}
	return err
}
