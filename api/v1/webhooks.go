package apiv1

import (
	"encoding/json"
	"time"
)

// Event names: what the WebSocket stream, job histories and webhooks carry.
const (
	EventJobQueued    = "job.queued"
	EventJobStarted   = "job.started"
	EventJobCompleted = "job.completed"
	EventJobFailed    = "job.failed"
	EventJobCancelled = "job.cancelled"
	EventPoolPaused   = "pool.paused"
	EventPoolResumed  = "pool.resumed"
)

// WebhookEvents are the event types a webhook can subscribe to.
var WebhookEvents = []string{
	EventJobQueued, EventJobStarted, EventJobCompleted, EventJobFailed, EventJobCancelled,
	EventPoolPaused, EventPoolResumed,
}

// MaxWebhooks is the most webhooks one organization may have. Every event
// is one delivery per subscribed webhook, and the executors send the
// platform's deliveries oldest first: without a bound, one organization's
// endpoints could fill their rounds for hours.
const MaxWebhooks = 25

// Delivery statuses (WebhookDelivery.Status).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// DeliveryStatuses lists every delivery status, for filters.
var DeliveryStatuses = []string{DeliveryPending, DeliveryDelivered, DeliveryFailed}

// Webhook is an endpoint that receives the organization's events. Its
// signing secret is shown only when it is created (WebhookCreated).
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	Events      []string `json:"events"`
	Enabled     bool     `json:"enabled"`
	// ConsecutiveFailures counts failed deliveries in a row; too many open
	// the circuit (Enabled false, DisabledReason set).
	ConsecutiveFailures int     `json:"consecutive_failures"`
	DisabledReason      *string `json:"disabled_reason,omitempty"`
	// DisabledAt is when the circuit opened.
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// WebhookCreated is a new webhook with its signing secret, which the server
// shows this once.
type WebhookCreated struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookRequest is the body of POST /v1/webhooks.
type WebhookRequest struct {
	// URL is an absolute https URL whose host resolves to public addresses.
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	// Events are some of WebhookEvents.
	Events []string `json:"events"`
}

// WebhookPatch is the body of PATCH /v1/webhooks/{id}: it changes the
// fields that are set; Enabled true also closes a circuit the server opened
// after repeated failures.
type WebhookPatch struct {
	URL         *string  `json:"url,omitempty"`
	Description *string  `json:"description,omitempty"`
	Events      []string `json:"events,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty"`
}

// WebhookDelivery is one event sent (or to be sent) to one webhook: an
// entry of its delivery log.
type WebhookDelivery struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	// EventID is the same on every redelivery: receivers deduplicate by it.
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Payload is the signed JSON body sent.
	Payload json.RawMessage `json:"payload"`
	// Status is one of DeliveryStatuses.
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty"`
	LastAttemptAt  *time.Time `json:"last_attempt_at,omitempty"`
	LastStatusCode *int       `json:"last_status_code,omitempty"`
	LastError      *string    `json:"last_error,omitempty"`
	LatencyMS      *int       `json:"latency_ms,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
}
