package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Delivery statuses: pending (waiting for its next attempt, or in flight),
// delivered (a 2xx was received), failed (retries exhausted).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// DeliveryStatuses lists every status, for validating filters.
var DeliveryStatuses = []string{DeliveryPending, DeliveryDelivered, DeliveryFailed}

// webhookJobSnapshot is the job document a job event's delivery carries:
// what GET /v1/jobs/{id} shows, less the encode spec.
const webhookJobSnapshot = `jsonb_build_object(
	'id', j.id, 'status', j.status, 'pool_id', j.pool_id, 'lane', j.lane, 'priority', j.priority,
	'input_asset_id', j.input_asset_id, 'input_url', j.input_url, 'workflow_id', j.workflow_id,
	'attempts', j.attempts, 'max_attempts', j.max_attempts, 'progress', j.progress, 'error', j.error,
	'outputs', j.outputs, 'usage', j.usage, 'metadata', j.metadata,
	'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at)`

// insertPoolEvent queues pool.paused / pool.resumed for the webhooks
// subscribed to it: the pool's organization's, or every organization's for
// the shared pool (their jobs wait in it too).
func insertPoolEvent(ctx context.Context, tx execer, p Pool) error {
	typ := "pool.resumed"
	if p.Status == "paused" {
		typ = "pool.paused"
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, event_type, payload)
		SELECT gen_random_uuid(), w.id, w.org_id, $1::text, $2::text, jsonb_build_object(
			'id', $1::text, 'type', $2::text, 'org_id', w.org_id, 'pool_id', $3::text,
			'data', jsonb_build_object('status', $4::text, 'shared', $5::uuid IS NULL, 'paused_by', $6::text), 'at', now())
		FROM webhooks w
		WHERE w.enabled AND $2::text = ANY (w.events) AND ($5::uuid IS NULL OR w.org_id = $5::uuid)`,
		newID().String(), typ, p.ID, p.Status, p.OrgID, p.PausedBy)
	return mapErr(err, "pool event")
}

// WebhookDelivery is one event sent (or to be sent) to one webhook: the
// delivery log entry.
type WebhookDelivery struct {
	ID             uuid.UUID       `db:"id"`
	WebhookID      uuid.UUID       `db:"webhook_id"`
	OrgID          uuid.UUID       `db:"org_id"`
	EventID        string          `db:"event_id"`
	EventType      string          `db:"event_type"`
	Payload        json.RawMessage `db:"payload"`
	Status         string          `db:"status"`
	Attempts       int             `db:"attempts"`
	NextAttemptAt  *time.Time      `db:"next_attempt_at"`
	LastAttemptAt  *time.Time      `db:"last_attempt_at"`
	LastStatusCode *int            `db:"last_status_code"`
	LastError      *string         `db:"last_error"`
	LatencyMS      *int            `db:"latency_ms"`
	CreatedAt      time.Time       `db:"created_at"`
	DeliveredAt    *time.Time      `db:"delivered_at"`
}

const deliveryColumns = `id, webhook_id, org_id, event_id, event_type, payload, status, attempts,
	CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, last_attempt_at,
	last_status_code, last_error, latency_ms, created_at, delivered_at`

// ListDeliveries lists one webhook's deliveries, newest first; status ""
// lists all.
func (s *Store) ListDeliveries(ctx context.Context, orgID, webhookID uuid.UUID, status string, page Page) ([]WebhookDelivery, error) {
	if _, err := s.GetWebhook(ctx, orgID, webhookID); err != nil {
		return nil, err
	}
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE webhook_id = $1 AND org_id = $2 AND ($3 = '' OR status = $3)
		  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
		ORDER BY created_at DESC, id DESC LIMIT $6`, webhookID, orgID, status, after, afterID, page.limit())
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[WebhookDelivery])
	return ds, mapErr(err, "deliveries")
}

// GetDelivery returns one delivery of one of the organization's webhooks.
func (s *Store) GetDelivery(ctx context.Context, orgID, webhookID, id uuid.UUID) (WebhookDelivery, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE id = $1 AND webhook_id = $2 AND org_id = $3`, id, webhookID, orgID)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[WebhookDelivery])
	return d, mapErr(err, "delivery")
}

// Redeliver schedules a delivery (whatever its status) for an attempt at
// now with a fresh retry budget; an attempt in flight loses its claim and
// its result is dropped. A disabled webhook is a conflict: enable it first.
func (s *Store) Redeliver(ctx context.Context, orgID, webhookID, id uuid.UUID, now time.Time) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var enabled bool
		if err := tx.QueryRow(ctx, `SELECT enabled FROM webhooks WHERE id = $1 AND org_id = $2 FOR SHARE`, webhookID, orgID).Scan(&enabled); err != nil {
			return mapErr(err, "webhook")
		}
		if !enabled {
			return conflict("webhook %s is disabled; enable it (PATCH enabled=true) before redelivering", webhookID)
		}
		rows, _ := tx.Query(ctx, `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4,
				claim_token = NULL, delivered_at = NULL
			WHERE id = $1 AND webhook_id = $2 AND org_id = $3 RETURNING `+deliveryColumns, id, webhookID, orgID, now)
		d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[WebhookDelivery])
		out = d
		return mapErr(err, "delivery")
	})
	return out, err
}

// DueDelivery is a delivery claimed for one attempt, with what sending needs.
type DueDelivery struct {
	ID         uuid.UUID
	WebhookID  uuid.UUID
	OrgID      uuid.UUID
	EventID    string
	EventType  string
	Payload    []byte
	Attempt    int // this attempt's number, 1-based
	CreatedAt  time.Time
	URL        string
	Secret     string
	ClaimToken uuid.UUID
}

// ClaimDeliveries takes up to limit pending deliveries of enabled webhooks
// due at now, shared among organizations in turns: one delivery of each
// organization that has one due (those waiting longest first), then a second
// of each, and so on; an organization's turns go round its webhooks, each
// webhook's deliveries in event order. One organization's backlog of
// thousands, over however many webhooks, thus takes one place a turn, not the
// whole round, and every other organization's deliveries still go out each
// round. Each is claimed for lease: its next_attempt_at moves to now+lease
// and it gets a claim token, in one short transaction with FOR UPDATE SKIP
// LOCKED, so concurrent replicas never take the same row and a replica that
// dies mid-attempt only delays it by lease. The claims come back in event
// order (created_at, id).
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]DueDelivery, error) {
	token := newID()
	// hooks: at most limit webhooks with something due (one probe of
	// webhook_deliveries_webhook_due_idx each), taken in turns too: the
	// longest-waiting webhook of every organization before the second of
	// any, so that no organization's webhooks fill the set. candidates: up
	// to limit due deliveries of each, numbered in event order (the
	// webhook's turn). picked: numbered again within the organization by the
	// webhook's turn, so an organization's webhooks take its turns one after
	// another. The rows are read unlocked, then the picked ones are locked
	// and checked again, so only what is claimed is locked.
	rows, err := s.pool.Query(ctx, `
		WITH hooks AS (
			SELECT id, org_id, at FROM (
				SELECT w.id, w.org_id, first.at, row_number() OVER (PARTITION BY w.org_id ORDER BY first.at, w.id) AS hook_turn
				FROM webhooks w
				CROSS JOIN LATERAL (
					SELECT d.next_attempt_at AS at FROM webhook_deliveries d
					WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= $1
					ORDER BY d.next_attempt_at LIMIT 1) first
				WHERE w.enabled) due_hooks
			ORDER BY hook_turn, at, id LIMIT $3),
		candidates AS (
			SELECT c.id, c.turn, h.org_id, h.at FROM hooks h
			CROSS JOIN LATERAL (
				SELECT d.id, row_number() OVER (ORDER BY d.next_attempt_at, d.created_at, d.id) AS turn
				FROM webhook_deliveries d
				WHERE d.webhook_id = h.id AND d.status = 'pending' AND d.next_attempt_at <= $1
				ORDER BY d.next_attempt_at, d.created_at, d.id LIMIT $3) c),
		picked AS (
			SELECT id FROM (
				SELECT id, at, row_number() OVER (PARTITION BY org_id ORDER BY turn, at, id) AS org_turn
				FROM candidates) c
			ORDER BY org_turn, at, id LIMIT $3),
		due AS (
			SELECT d.id FROM webhook_deliveries d
			WHERE d.id IN (SELECT id FROM picked) AND d.status = 'pending' AND d.next_attempt_at <= $1
			FOR UPDATE SKIP LOCKED)
		UPDATE webhook_deliveries d SET next_attempt_at = $2, attempts = d.attempts + 1, claim_token = $4
		FROM due, webhooks w
		WHERE d.id = due.id AND w.id = d.webhook_id
		RETURNING d.id, d.webhook_id, d.org_id, d.event_id, d.event_type, d.payload, d.attempts, d.created_at, w.url, w.secret`,
		now, now.Add(lease), limit, token)
	if err != nil {
		return nil, mapErr(err, "claim deliveries")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueDelivery, error) {
		d := DueDelivery{ClaimToken: token}
		err := r.Scan(&d.ID, &d.WebhookID, &d.OrgID, &d.EventID, &d.EventType, &d.Payload, &d.Attempt, &d.CreatedAt, &d.URL, &d.Secret)
		return d, err
	})
	if err != nil {
		return nil, mapErr(err, "claim deliveries")
	}
	// RETURNING has no order of its own.
	slices.SortFunc(out, func(a, b DueDelivery) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return out, nil
}

// ReleaseDeliveries hands claimed deliveries back unattempted (the executor
// stopped sending to their webhook this round): due again at `at`, the
// attempt not counted.
func (s *Store) ReleaseDeliveries(ctx context.Context, ds []DueDelivery, at time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	_, err := s.pool.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $2, attempts = attempts - 1, claim_token = NULL
		WHERE id = ANY($1) AND claim_token = $3 AND status = 'pending'`, ids, at, ds[0].ClaimToken)
	return mapErr(err, "release deliveries")
}

// AttemptResult is the outcome of one attempt.
type AttemptResult struct {
	Delivery   DueDelivery
	At         time.Time
	StatusCode int    // 0 when no answer came
	Error      string // "" on success
	Latency    time.Duration
	// Status is DeliveryDelivered, DeliveryPending (retry at NextAttemptAt)
	// or DeliveryFailed (gave up).
	Status        string
	NextAttemptAt time.Time
	// CircuitThreshold disables the webhook once this many attempts in a row
	// failed.
	CircuitThreshold int
}

// CircuitState is a webhook's breaker after an attempt was recorded.
type CircuitState struct {
	ConsecutiveFailures int
	Enabled             bool
	// Opened is true when this very attempt disabled the webhook.
	Opened bool
	// Recorded is false when the claim was lost (redelivered, or the webhook
	// deleted) and the result was dropped.
	Recorded bool
}

// RecordAttempt stores an attempt's outcome if the caller still holds the
// claim, and moves the webhook's consecutive-failure count: reset by a
// success, raised by a failure, which opens the circuit (disables the
// webhook) when it reaches the threshold.
func (s *Store) RecordAttempt(ctx context.Context, r AttemptResult) (CircuitState, error) {
	var st CircuitState
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var code *int
		if r.StatusCode != 0 {
			code = &r.StatusCode
		}
		var msg *string
		if r.Error != "" {
			msg = &r.Error
		}
		var delivered *time.Time
		if r.Status == DeliveryDelivered {
			delivered = &r.At
		}
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, last_attempt_at = $5,
				last_status_code = $6, last_error = $7, latency_ms = $8, delivered_at = $9, claim_token = NULL
			WHERE id = $1 AND claim_token = $2 AND status = 'pending'`,
			r.Delivery.ID, r.Delivery.ClaimToken, r.Status, r.NextAttemptAt, r.At, code, msg, int(r.Latency.Milliseconds()), delivered)
		if err != nil {
			return mapErr(err, "record delivery")
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		st.Recorded = true
		var was bool
		if r.Status == DeliveryDelivered {
			err = tx.QueryRow(ctx, `UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1
				RETURNING consecutive_failures, enabled, enabled`, r.Delivery.WebhookID).Scan(&st.ConsecutiveFailures, &st.Enabled, &was)
		} else {
			err = tx.QueryRow(ctx, `
				UPDATE webhooks w SET consecutive_failures = w.consecutive_failures + 1,
					enabled = w.enabled AND w.consecutive_failures + 1 < $2::int,
					disabled_reason = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2
						THEN $3::text || ' deliveries failed in a row (last: ' || $4::text || '); fix the endpoint, then PATCH enabled=true'
						ELSE w.disabled_reason END,
					disabled_at = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2 THEN $5::timestamptz ELSE w.disabled_at END,
					updated_at = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2 THEN $5::timestamptz ELSE w.updated_at END
				FROM (SELECT id, enabled AS was FROM webhooks WHERE id = $1 FOR UPDATE) o
				WHERE w.id = o.id
				RETURNING w.consecutive_failures, w.enabled, o.was`,
				r.Delivery.WebhookID, r.CircuitThreshold, fmt.Sprint(r.CircuitThreshold), r.Error, r.At).Scan(&st.ConsecutiveFailures, &st.Enabled, &was)
		}
		if errors.Is(err, pgx.ErrNoRows) { // the webhook was deleted meanwhile
			return nil
		}
		st.Opened = was && !st.Enabled
		return mapErr(err, "webhook circuit")
	})
	return st, err
}

// PruneDeliveries deletes up to limit finished (delivered or failed)
// deliveries created before cutoff: the log keeps a retention window.
// Pending deliveries are never pruned.
func (s *Store) PruneDeliveries(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1
		ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	if err != nil {
		return 0, mapErr(err, "prune deliveries")
	}
	return tag.RowsAffected(), nil
}

// WebhookFailureCounts returns the consecutive-failure count of every
// webhook that has one (for mpegflow_webhook_consecutive_failures).
func (s *Store) WebhookFailureCounts(ctx context.Context) (map[uuid.UUID]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, consecutive_failures FROM webhooks WHERE consecutive_failures > 0`)
	if err != nil {
		return nil, mapErr(err, "webhook failures")
	}
	out := map[uuid.UUID]int{}
	var (
		id uuid.UUID
		n  int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	return out, mapErr(err, "webhook failures")
}
