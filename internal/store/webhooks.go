package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// WebhookEvents are the event types a webhook may subscribe to.
var WebhookEvents = []string{
	"job.queued", "job.started", "job.completed", "job.failed", "job.cancelled",
	"pool.paused", "pool.resumed",
}

// Webhook is an organization's subscription to events. The secret signs
// deliveries; the API shows it only when the webhook is created.
type Webhook struct {
	ID                  uuid.UUID `db:"id"`
	OrgID               uuid.UUID `db:"org_id"`
	URL                 string    `db:"url"`
	Description         string    `db:"description"`
	Events              []string  `db:"events"`
	Secret              string    `db:"secret"`
	Enabled             bool      `db:"enabled"`
	ConsecutiveFailures int       `db:"consecutive_failures"`
	DisabledReason      *string   `db:"disabled_reason"`
	// DisabledAt is when the circuit opened (N straight failed deliveries).
	DisabledAt *time.Time `db:"disabled_at"`
	CreatedAt  time.Time  `db:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at"`
}

const webhookColumns = `id, org_id, url, description, events, secret, enabled, consecutive_failures,
	disabled_reason, disabled_at, created_at, updated_at`

func newWebhookSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

// CreateWebhook stores a webhook with a fresh signing secret: a conflict
// once the organization has apiv1.MaxWebhooks.
func (s *Store) CreateWebhook(ctx context.Context, orgID uuid.UUID, url, description string, events []string) (Webhook, error) {
	var w Webhook
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The organization's row serializes its creations; the count is a
		// statement of its own, so that its snapshot is taken after the
		// lock and sees what a creation that held it committed.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE`, orgID); err != nil {
			return mapErr(err, "organization")
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE org_id = $1`, orgID).Scan(&n); err != nil {
			return mapErr(err, "webhooks")
		}
		if n >= apiv1.MaxWebhooks {
			return conflict("the organization has %d webhooks, the most it may have; delete one it no longer needs first", n)
		}
		rows, _ := tx.Query(ctx, `INSERT INTO webhooks (id, org_id, url, description, events, secret)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+webhookColumns, newID(), orgID, url, description, events, newWebhookSecret())
		var err error
		w, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Webhook])
		return mapErr(err, "webhook")
	})
	return w, err
}

// GetWebhook returns one of the organization's webhooks.
func (s *Store) GetWebhook(ctx context.Context, orgID, id uuid.UUID) (Webhook, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND org_id = $2`, id, orgID)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Webhook])
	return w, mapErr(err, "webhook")
}

// ListWebhooks lists the organization's webhooks, newest first.
func (s *Store) ListWebhooks(ctx context.Context, orgID uuid.UUID, page Page) ([]Webhook, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks
		WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, orgID, after, afterID, page.limit())
	ws, err := pgx.CollectRows(rows, pgx.RowToStructByName[Webhook])
	return ws, mapErr(err, "webhooks")
}

// WebhookPatch holds the fields an update may change; nil = unchanged.
// Enabling a webhook closes its circuit (resets the failure count).
type WebhookPatch struct {
	URL         *string
	Description *string
	Events      []string
	Enabled     *bool
}

// UpdateWebhook changes a webhook.
func (s *Store) UpdateWebhook(ctx context.Context, orgID, id uuid.UUID, p WebhookPatch) (Webhook, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE webhooks SET
			url = COALESCE($3, url), description = COALESCE($4, description),
			events = COALESCE($5, events), enabled = COALESCE($6, enabled),
			consecutive_failures = CASE WHEN $6 THEN 0 ELSE consecutive_failures END,
			disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
			disabled_at = CASE WHEN $6 THEN NULL ELSE disabled_at END,
			updated_at = now()
		WHERE id = $1 AND org_id = $2 RETURNING `+webhookColumns, id, orgID, p.URL, p.Description, p.Events, p.Enabled)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Webhook])
	return w, mapErr(err, "webhook")
}

// DeleteWebhook deletes a webhook and its delivery log.
func (s *Store) DeleteWebhook(ctx context.Context, orgID, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND org_id = $2`, id, orgID)
	if err != nil {
		return mapErr(err, "webhook")
	}
	if tag.RowsAffected() == 0 {
		return mapErr(pgx.ErrNoRows, "webhook")
	}
	return nil
}
