package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The webhook types are the contract's own (package api/v1).
type (
	// Webhook is an endpoint that receives the organization's events.
	Webhook = apiv1.Webhook
	// WebhookDelivery is one event sent (or being sent) to a webhook.
	WebhookDelivery = apiv1.WebhookDelivery
	// WebhookRequest creates a webhook.
	WebhookRequest = apiv1.WebhookRequest
	// WebhookPatch changes the fields that are set; Enabled true also
	// closes a circuit the server opened after repeated failures.
	WebhookPatch = apiv1.WebhookPatch
	// CreatedWebhook is a new webhook with its signing secret, which the
	// server shows this once.
	CreatedWebhook = apiv1.WebhookCreated
)

// WebhookEvents are the event types a webhook can subscribe to.
var WebhookEvents = apiv1.WebhookEvents

// CreateWebhook registers a webhook.
func (c *Client) CreateWebhook(ctx context.Context, req WebhookRequest) (CreatedWebhook, error) {
	var w CreatedWebhook
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", body: req, out: &w})
	return w, err
}

// ListWebhooks reads one page of webhooks, newest first.
func (c *Client) ListWebhooks(ctx context.Context, limit int, cursor string) (Page[Webhook], error) {
	var p Page[Webhook]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/webhooks", query: pageQuery(limit, cursor), out: &p})
	return p, err
}

// GetWebhook reads a webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	err := c.do(ctx, call{method: http.MethodGet, path: webhookPath(id), out: &w})
	return w, err
}

// UpdateWebhook changes what patch sets.
func (c *Client) UpdateWebhook(ctx context.Context, id string, patch WebhookPatch) (Webhook, error) {
	var w Webhook
	err := c.do(ctx, call{method: http.MethodPatch, path: webhookPath(id), body: patch, out: &w})
	return w, err
}

// DeleteWebhook removes a webhook; its pending deliveries are not sent.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: webhookPath(id)})
}

// ListDeliveries reads one page of a webhook's delivery log, newest first;
// status ("pending", "delivered", "failed"; "" for all) narrows it.
func (c *Client) ListDeliveries(ctx context.Context, webhookID, status string, limit int, cursor string) (Page[WebhookDelivery], error) {
	q := pageQuery(limit, cursor)
	if status != "" {
		q.Set("status", status)
	}
	var p Page[WebhookDelivery]
	err := c.do(ctx, call{method: http.MethodGet, path: webhookPath(webhookID) + "/deliveries", query: q, out: &p})
	return p, err
}

// Redeliver sends a delivery again (same event id) with a fresh retry
// budget.
func (c *Client) Redeliver(ctx context.Context, webhookID, deliveryID string) (WebhookDelivery, error) {
	var d WebhookDelivery
	err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(webhookID) + "/deliveries/" + url.PathEscape(deliveryID) + "/redeliver", out: &d})
	return d, err
}

func webhookPath(id string) string { return "/v1/webhooks/" + url.PathEscape(id) }
