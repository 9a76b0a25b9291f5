package apiserver

import (
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// deliveryIDs reads the webhook and delivery ids of a delivery route.
func deliveryIDs(c *fiber.Ctx) (webhookID, deliveryID uuid.UUID, err error) {
	if webhookID, err = pathID(c, "webhook"); err != nil {
		return
	}
	if deliveryID, err = uuid.Parse(c.Params("delivery_id")); err != nil {
		return uuid.Nil, uuid.Nil, notFound("delivery")
	}
	return webhookID, deliveryID, nil
}

// listDeliveries is the delivery log: each event sent to the webhook, its
// status, attempts, last status code, error and latency, newest first.
func (s *Server) listDeliveries(c *fiber.Ctx) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	status := c.Query("status")
	if status != "" && !slices.Contains(apiv1.DeliveryStatuses, status) {
		return invalidField("status", "must be one of %s", strings.Join(apiv1.DeliveryStatuses, ", "))
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ds, err := s.store.ListDeliveries(c.UserContext(), principal(c).OrgID, id, status, page)
	if err != nil {
		return notFoundOr(err, "webhook")
	}
	return c.JSON(pageOf(ds, page, func(d store.WebhookDelivery) (time.Time, uuid.UUID) { return d.CreatedAt, d.ID }, deliveryOut))
}

func (s *Server) getDelivery(c *fiber.Ctx) error {
	hook, id, err := deliveryIDs(c)
	if err != nil {
		return err
	}
	d, err := s.store.GetDelivery(c.UserContext(), principal(c).OrgID, hook, id)
	if err != nil {
		return notFoundOr(err, "delivery")
	}
	return c.JSON(deliveryOut(d))
}

// redeliver sends a delivery again (delivered, failed or still pending):
// the next executor round attempts it with a fresh retry budget. The event
// id stays the same, so receivers that deduplicate see a duplicate.
func (s *Server) redeliver(c *fiber.Ctx) error {
	hook, id, err := deliveryIDs(c)
	if err != nil {
		return err
	}
	d, err := s.store.Redeliver(c.UserContext(), principal(c).OrgID, hook, id, time.Now())
	if err != nil {
		return notFoundOr(err, "delivery")
	}
	return c.Status(fiber.StatusAccepted).JSON(deliveryOut(d))
}
