package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/internal/validation"
	"github.com/mpegflow/mpegflow/webhook"
)

// WebhookConfig tunes the Webhook Executor; zero values take the defaults.
type WebhookConfig struct {
	// Timeout bounds one attempt, answer included (default 10 s).
	Timeout time.Duration
	// BackoffBase and BackoffMax shape the waits between attempts:
	// base·2^(attempt−1) capped at max, ±10 % jitter (defaults 30 s and 4 h).
	BackoffBase, BackoffMax time.Duration
	// RetryWindow: no attempt is scheduled later than this after the event
	// (default 24 h, about 14 attempts); then the delivery is failed.
	RetryWindow time.Duration
	// CircuitThreshold disables a webhook after this many failed attempts in
	// a row (default 20); PATCH enabled=true closes the circuit again.
	CircuitThreshold int
	// Batch bounds the deliveries one claim takes (default 100) and
	// Concurrency the webhooks served at once (default 8). A webhook's
	// deliveries go one after another, in event order.
	Batch, Concurrency int
	// Lease is how long a claimed delivery stays out of other replicas'
	// reach (default 2 min). A round stops sending a claim that is older than
	// Lease − Timeout and hands it back, so a claim never outlives its lease.
	Lease time.Duration
	// Retention is how long finished deliveries stay in the log (default
	// 30 days); each round prunes up to Batch older ones.
	Retention time.Duration
	// Guard decides where deliveries may connect (default: public https only).
	Guard *netguard.Guard
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
}

func (c *WebhookConfig) defaults() {
	c.Timeout = cmp.Or(c.Timeout, 10*time.Second)
	c.BackoffBase = cmp.Or(c.BackoffBase, 30*time.Second)
	c.BackoffMax = cmp.Or(c.BackoffMax, 4*time.Hour)
	c.RetryWindow = cmp.Or(c.RetryWindow, 24*time.Hour)
	c.CircuitThreshold = cmp.Or(c.CircuitThreshold, 20)
	c.Batch = cmp.Or(c.Batch, 100)
	c.Concurrency = cmp.Or(c.Concurrency, 8)
	c.Lease = max(cmp.Or(c.Lease, 2*time.Minute), 2*c.Timeout)
	c.Retention = cmp.Or(c.Retention, 30*24*time.Hour)
	if c.Guard == nil {
		c.Guard = netguard.New(netguard.Config{})
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
}

// Backoff is the wait after failed attempt number attempt (1-based).
func (c *WebhookConfig) Backoff(attempt int) time.Duration {
	return backoff(c.BackoffBase, c.BackoffMax, attempt, 0.9, 0.2, c.Jitter())
}

// deliveryStore is what the executor needs from Postgres.
type deliveryStore interface {
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.DueDelivery, error)
	ReleaseDeliveries(ctx context.Context, ds []store.DueDelivery, at time.Time) error
	RecordAttempt(ctx context.Context, r store.AttemptResult) (store.CircuitState, error)
	PruneDeliveries(ctx context.Context, cutoff time.Time, limit int) (int64, error)
}

var _ deliveryStore = (*store.Store)(nil)

// WebhookExecutor sends pending webhook deliveries: signed POSTs, retried
// with exponential backoff for about a day, behind a per-webhook circuit
// breaker. Every replica runs it; claims make each attempt one replica's.
type WebhookExecutor struct {
	cfg     WebhookConfig
	store   deliveryStore
	client  *http.Client
	clock   clock.PassiveClock
	metrics *telemetry.Metrics
	log     *slog.Logger
}

// NewWebhookExecutor returns an executor; clk stamps attempts and schedules
// retries (tests inject a fake one).
func NewWebhookExecutor(cfg WebhookConfig, st deliveryStore, clk clock.PassiveClock, m *telemetry.Metrics, log *slog.Logger) *WebhookExecutor {
	cfg.defaults()
	client := cfg.Guard.Client(netguard.ClientConfig{Timeout: cfg.Timeout, UserAgent: "MpegFlow-Webhooks/1"})
	return &WebhookExecutor{cfg: cfg, store: st, client: client, clock: clk, metrics: m, log: log}
}

// maxClaimsPerRound bounds the claims one round makes back to back while
// each comes back full (Batch deliveries, all attempted): a backlog drains at
// the receivers' pace instead of Batch a period, and the round still ends.
const maxClaimsPerRound = 10

// Deliver runs one round: claim due deliveries, send them (each webhook's in
// order, several webhooks at once), record each outcome, and claim again at
// once while the claim was full and every delivery in it was attempted (a
// backlog), up to maxClaimsPerRound claims. It returns how many attempts
// were made.
func (x *WebhookExecutor) Deliver(ctx context.Context) (int, error) {
	total := 0
	var err error
	for range maxClaimsPerRound {
		var attempts, claimed int
		attempts, claimed, err = x.claimAndSend(ctx)
		total += attempts
		if err != nil || claimed < x.cfg.Batch || attempts < claimed || ctx.Err() != nil {
			break
		}
	}
	cutoff := x.clock.Now().Add(-x.cfg.Retention)
	if _, perr := x.store.PruneDeliveries(ctx, cutoff, x.cfg.Batch); perr != nil && err == nil {
		err = fmt.Errorf("webhook executor: %w", perr)
	}
	return total, err
}

// claimAndSend claims one batch and sends it; it returns the attempts made
// and the deliveries claimed (those not attempted were handed back).
func (x *WebhookExecutor) claimAndSend(ctx context.Context) (int, int, error) {
	claimedAt := x.clock.Now()
	due, err := x.store.ClaimDeliveries(ctx, claimedAt, x.cfg.Lease, x.cfg.Batch)
	if err != nil {
		return 0, 0, fmt.Errorf("webhook executor: %w", err)
	}
	var order []uuid.UUID
	byHook := map[uuid.UUID][]store.DueDelivery{}
	for _, d := range due {
		if _, ok := byHook[d.WebhookID]; !ok {
			order = append(order, d.WebhookID)
		}
		byHook[d.WebhookID] = append(byHook[d.WebhookID], d)
	}
	attempts := make([]int, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(x.cfg.Concurrency)
	for i, id := range order {
		g.Go(func() error {
			n, err := x.deliverHook(gctx, byHook[id], claimedAt)
			attempts[i] = n
			return err
		})
	}
	err = g.Wait()
	total := 0
	for _, n := range attempts {
		total += n
	}
	return total, len(due), err
}

// deliverHook sends one webhook's claimed deliveries in order. After a
// failure the rest go back unattempted: a receiver that is down gets one
// attempt per round, not a burst.
func (x *WebhookExecutor) deliverHook(ctx context.Context, ds []store.DueDelivery, claimedAt time.Time) (int, error) {
	for i, d := range ds {
		if ctx.Err() != nil || x.clock.Since(claimedAt) > x.cfg.Lease-x.cfg.Timeout {
			return i, x.release(ctx, ds[i:])
		}
		res := x.attempt(ctx, d)
		st, err := x.store.RecordAttempt(ctx, res)
		if err != nil {
			return i + 1, fmt.Errorf("webhook executor: delivery %s: %w", d.ID, err)
		}
		if !st.Recorded {
			continue // redelivered or deleted meanwhile
		}
		x.metrics.WebhookDeliveries.WithLabelValues(metricStatus(res.Status)).Inc()
		x.logAttempt(ctx, res, st)
		if res.Status != store.DeliveryDelivered {
			return i + 1, x.release(ctx, ds[i+1:])
		}
	}
	return len(ds), nil
}

func (x *WebhookExecutor) release(ctx context.Context, ds []store.DueDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	// A context that ended still hands the claims back: otherwise they wait
	// for their lease.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := x.store.ReleaseDeliveries(ctx, ds, x.clock.Now()); err != nil {
		return fmt.Errorf("webhook executor: release claims: %w", err)
	}
	return nil
}

func metricStatus(s string) string {
	switch s {
	case store.DeliveryDelivered:
		return "delivered"
	case store.DeliveryPending:
		return "retrying"
	default:
		return "failed"
	}
}

// attempt sends one delivery and decides what follows.
func (x *WebhookExecutor) attempt(ctx context.Context, d store.DueDelivery) store.AttemptResult {
	at := x.clock.Now()
	res := store.AttemptResult{Delivery: d, At: at, CircuitThreshold: x.cfg.CircuitThreshold}
	start := time.Now() // latency is a measurement of the real world, not logic under test
	code, err := x.send(ctx, d, at)
	res.Latency, res.StatusCode = time.Since(start), code
	if err == nil {
		res.Status = store.DeliveryDelivered
		return res
	}
	res.Error = truncate(err.Error(), 500)
	next := at.Add(x.cfg.Backoff(d.Attempt))
	if next.After(d.CreatedAt.Add(x.cfg.RetryWindow)) {
		res.Status, res.NextAttemptAt = store.DeliveryFailed, at
		res.Error += fmt.Sprintf(" (gave up after %d attempts)", d.Attempt)
	} else {
		res.Status, res.NextAttemptAt = store.DeliveryPending, next
	}
	return res
}

// send POSTs the payload, signed at at. A 2xx is success; anything else,
// a redirect included (deliveries do not follow redirects), is a failure.
func (x *WebhookExecutor) send(ctx context.Context, d store.DueDelivery, at time.Time) (int, error) {
	u, err := url.Parse(d.URL)
	if err != nil {
		return 0, fmt.Errorf("webhook url does not parse: %w", err)
	}
	if err := x.cfg.Guard.CheckScheme(u); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(d.Secret, at, d.Payload))
	req.Header.Set(webhook.EventIDHeader, d.EventID)
	req.Header.Set(webhook.EventTypeHeader, d.EventType)
	req.Header.Set(webhook.DeliveryHeader, d.ID.String())
	resp, err := x.client.Do(req)
	if err != nil {
		if r := netguard.Refusal(err); r != nil {
			return 0, r
		}
		return 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	msg := "answered " + resp.Status
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		msg += " (redirects are not followed; point the webhook at " + truncate(loc, 200) + ")"
	} else if s := strings.TrimSpace(string(snippet)); s != "" {
		msg += ": " + validation.Storable(s) // the receiver's words, stored as text
	}
	return resp.StatusCode, fmt.Errorf("%s", msg)
}

func (x *WebhookExecutor) logAttempt(ctx context.Context, r store.AttemptResult, st store.CircuitState) {
	attrs := []any{slog.String("webhook_id", r.Delivery.WebhookID.String()), slog.String("org_id", r.Delivery.OrgID.String()),
		slog.String("delivery_id", r.Delivery.ID.String()), slog.String("event", r.Delivery.EventType),
		slog.Int("attempt", r.Delivery.Attempt), slog.Int("status_code", r.StatusCode), slog.Int64("latency_ms", r.Latency.Milliseconds())}
	switch {
	case st.Opened:
		x.log.WarnContext(ctx, "webhook disabled after failing deliveries in a row; its owner must fix the endpoint and PATCH enabled=true",
			append(attrs, slog.Int("consecutive_failures", st.ConsecutiveFailures), slog.String("error", r.Error))...)
	case r.Status == store.DeliveryFailed:
		x.log.InfoContext(ctx, "webhook delivery gave up", append(attrs, slog.String("error", r.Error))...)
	case r.Status == store.DeliveryPending:
		x.log.DebugContext(ctx, "webhook delivery failed; retrying", append(attrs, slog.String("error", r.Error), slog.Time("next_attempt_at", r.NextAttemptAt))...)
	default:
		x.log.DebugContext(ctx, "webhook delivered", attrs...)
	}
}

func truncate(s string, n int) string {
	return validation.Truncate(validation.Storable(s), n)
}
