package apiserver

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// checkWebhookURL accepts an absolute https URL (http in development) whose
// host resolves to public addresses only; the Webhook Executor checks the
// address again each time it connects.
func (s *Server) checkWebhookURL(ctx context.Context, errs *validation.Errors, raw string) {
	u, err := url.Parse(raw)
	switch {
	case len(raw) > 2048:
		errs.Add("url", "must be at most 2048 characters")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs.Add("url", "must be an absolute https:// URL")
	default:
		if detail := s.guardURL(ctx, raw); detail != "" {
			errs.Add("url", "%s", detail)
		}
	}
}

func checkWebhookEvents(errs *validation.Errors, evs []string) []string {
	if len(evs) == 0 {
		errs.Add("events", "subscribe to at least one of %s", strings.Join(apiv1.WebhookEvents, ", "))
		return nil
	}
	out := []string{}
	for i, e := range evs {
		if !slices.Contains(apiv1.WebhookEvents, e) {
			errs.Add("events["+itoa(i)+"]", "unknown event; want one of %s", strings.Join(apiv1.WebhookEvents, ", "))
		} else if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req apiv1.WebhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	s.checkWebhookURL(c.UserContext(), &errs, req.URL)
	evs := checkWebhookEvents(&errs, req.Events)
	if len(req.Description) > 1000 {
		errs.Add("description", "must be at most 1000 characters")
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	w, err := s.store.CreateWebhook(c.UserContext(), principal(c).OrgID, req.URL, req.Description, evs)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(apiv1.WebhookCreated{Webhook: webhookOut(w), Secret: w.Secret})
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ws, err := s.store.ListWebhooks(c.UserContext(), principal(c).OrgID, page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(ws, page, func(w store.Webhook) (time.Time, uuid.UUID) { return w.CreatedAt, w.ID }, webhookOut))
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	w, err := s.store.GetWebhook(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "webhook")
	}
	return c.JSON(webhookOut(w))
}

func (s *Server) updateWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	var req apiv1.WebhookPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	patch := store.WebhookPatch{URL: req.URL, Description: req.Description, Enabled: req.Enabled}
	if req.URL != nil {
		s.checkWebhookURL(c.UserContext(), &errs, *req.URL)
	}
	if req.Events != nil {
		patch.Events = checkWebhookEvents(&errs, req.Events)
	}
	if req.Description != nil && len(*req.Description) > 1000 {
		errs.Add("description", "must be at most 1000 characters")
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	w, err := s.store.UpdateWebhook(c.UserContext(), principal(c).OrgID, id, patch)
	if err != nil {
		return notFoundOr(err, "webhook")
	}
	return c.JSON(webhookOut(w))
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(c.UserContext(), principal(c).OrgID, id); err != nil {
		return notFoundOr(err, "webhook")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
