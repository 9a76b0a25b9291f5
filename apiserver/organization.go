package apiserver

import (
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

func (s *Server) getOrg(c *fiber.Ctx) error {
	org, err := s.store.GetOrg(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	return c.JSON(orgOut(org))
}

func (s *Server) updateOrg(c *fiber.Ctx) error {
	var req apiv1.OrganizationPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Name != nil {
		n := strings.TrimSpace(*req.Name)
		if n == "" || len(n) > 200 {
			return invalidField("name", "must be 1 to 200 characters")
		}
		req.Name = &n
	}
	org, err := s.store.UpdateOrg(c.UserContext(), principal(c).OrgID, store.OrgPatch{Name: req.Name})
	if err != nil {
		return err
	}
	return c.JSON(orgOut(org))
}

func (s *Server) usage(c *fiber.Ctx) error {
	now := time.Now().UTC()
	to, from := now, now.AddDate(0, 0, -30)
	var errs validation.Errors
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				errs.Add(name, "must be a date such as 2026-01-31")
				continue
			}
			*dst = t
		}
	}
	if len(errs) == 0 && (to.Before(from) || to.Sub(from) > 366*24*time.Hour) {
		errs.Add("to", "must be on or after from, at most 366 days later")
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	days, err := s.store.Usage(c.UserContext(), principal(c).OrgID, from, to)
	if err != nil {
		return err
	}
	return c.JSON(apiv1.Usage{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Days: mapAll(days, usageDayOut)})
}

func billingOf(o store.Organization) apiv1.Billing {
	return apiv1.Billing{Plan: o.Plan, BillingEmail: o.BillingEmail, BillingName: o.BillingName}
}

func (s *Server) getBilling(c *fiber.Ctx) error {
	org, err := s.store.GetOrg(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	return c.JSON(billingOf(org))
}

// updateBilling changes the billing contact. The plan is the platform's to
// change (PATCH /v1/admin/organizations/{id}): it sets the organization's
// platform-policy limits, so a tenant that could pick its own plan could
// lift its own guardrails. Sending the current plan is accepted, so a
// client that echoes GET's body back still works.
func (s *Server) updateBilling(c *fiber.Ctx) error {
	var req apiv1.BillingPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	if req.Plan != nil && !slices.Contains(apiv1.Plans, *req.Plan) {
		errs.Add("plan", "must be one of %s", strings.Join(apiv1.Plans, ", "))
	}
	if req.BillingEmail != nil {
		if a, err := mail.ParseAddress(*req.BillingEmail); err != nil || a.Address != *req.BillingEmail {
			errs.Add("billing_email", "must be an email address such as billing@example.com")
		}
	}
	if req.BillingName != nil && len(*req.BillingName) > 200 {
		errs.Add("billing_name", "must be at most 200 characters")
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	ctx := c.UserContext()
	if req.Plan != nil {
		cur, err := s.store.GetOrg(ctx, principal(c).OrgID)
		if err != nil {
			return err
		}
		if cur.Plan != *req.Plan {
			return problem(fiber.StatusForbidden, "plan-change",
				"the plan ("+cur.Plan+") is changed by the platform's administrators, not by the organization; ask them to move you to "+*req.Plan)
		}
	}
	org, err := s.store.UpdateOrg(ctx, principal(c).OrgID, store.OrgPatch{
		BillingEmail: req.BillingEmail, BillingName: req.BillingName,
	})
	if err != nil {
		return err
	}
	return c.JSON(billingOf(org))
}

func (s *Server) adminListOrgs(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	orgs, err := s.store.ListOrgs(c.UserContext(), page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(orgs, page, func(o store.Organization) (time.Time, uuid.UUID) { return o.CreatedAt, o.ID }, orgOut))
}

func (s *Server) adminSetStatus(c *fiber.Ctx, status string) error {
	id, err := pathID(c, "organization")
	if err != nil {
		return err
	}
	if id == principal(c).OrgID && status == "suspended" {
		return problem(fiber.StatusConflict, "conflict", "you cannot suspend your own organization")
	}
	org, err := s.store.SetOrgStatus(c.UserContext(), id, status)
	if err != nil {
		return notFoundOr(err, "organization")
	}
	s.keysChanged(c.UserContext(), id)
	return c.JSON(orgOut(org))
}

// adminUpdateOrg sets an organization's plan and/or fair-share weight. A
// body with neither is refused rather than read as "nothing to do", and a
// null share_weight means "back to the plan's default", so the field's
// presence is read from the raw body. A new plan re-records which pools
// are outside the platform policy; queued jobs get a new weight at the
// organization's next push or the queue reconciler's next round. Every
// replica forgets the organization's cached API keys, whose principals
// carry the weight its submissions are queued with.
func (s *Server) adminUpdateOrg(c *fiber.Ctx) error {
	id, err := pathID(c, "organization")
	if err != nil {
		return err
	}
	var req apiv1.OrganizationAdminPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(c.Body(), &present); err != nil {
		return badRequest("the body is not a JSON object")
	}
	_, setWeight := present["share_weight"]
	if !setWeight && req.Plan == nil {
		return invalidField("", "give plan, share_weight (a number from %d to %d, or null for the plan's default), or both", apiv1.MinShareWeight, apiv1.MaxShareWeight)
	}
	var errs validation.Errors
	if req.Plan != nil && !slices.Contains(apiv1.Plans, *req.Plan) {
		errs.Add("plan", "must be one of %s", strings.Join(apiv1.Plans, ", "))
	}
	if w := req.ShareWeight; w != nil && (*w < apiv1.MinShareWeight || *w > apiv1.MaxShareWeight) {
		errs.Add("share_weight", "must be from %d to %d, or null for the plan's default", apiv1.MinShareWeight, apiv1.MaxShareWeight)
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	ctx := c.UserContext()
	org, err := s.store.AdminUpdateOrg(ctx, id, store.OrgAdminPatch{Plan: req.Plan, SetShareWeight: setWeight, ShareWeight: req.ShareWeight})
	if err != nil {
		return notFoundOr(err, "organization")
	}
	// Cached principals carry the organization's share weight (the submit
	// path queues with it): every replica drops them.
	s.keysChanged(ctx, id)
	if req.Plan != nil {
		s.syncPolicyViolations(ctx, &id)
	}
	return c.JSON(orgOut(org))
}

func (s *Server) adminSuspend(c *fiber.Ctx) error   { return s.adminSetStatus(c, "suspended") }
func (s *Server) adminReinstate(c *fiber.Ctx) error { return s.adminSetStatus(c, "active") }
