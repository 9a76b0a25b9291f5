package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// WebhookFailureSource reads each failing webhook's consecutive-failure
// count (the store implements it).
type WebhookFailureSource interface {
	WebhookFailureCounts(ctx context.Context) (map[uuid.UUID]int, error)
}

// webhookCircuitCollector reads Postgres at scrape time, so every replica
// reports the same count whichever replica made the attempts: aggregate
// with max. Webhooks with no failure have no series.
type webhookCircuitCollector struct {
	src  WebhookFailureSource
	log  *slog.Logger
	desc *prometheus.Desc
}

// RegisterWebhookCircuits adds mpegflow_webhook_consecutive_failures{webhook_id}.
// A value at the configured threshold means the circuit is open (the
// webhook was disabled).
func (m *Metrics) RegisterWebhookCircuits(src WebhookFailureSource, log *slog.Logger) {
	m.Registry.MustRegister(&webhookCircuitCollector{src: src, log: log,
		desc: prometheus.NewDesc("mpegflow_webhook_consecutive_failures",
			"Failed webhook delivery attempts in a row, per webhook (the circuit opens at the threshold).", []string{"webhook_id"}, nil),
	})
}

func (c *webhookCircuitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *webhookCircuitCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	counts, err := c.src.WebhookFailureCounts(ctx)
	if err != nil {
		c.log.Warn("webhook failure metrics unavailable this scrape; check Postgres", slog.Any("error", err))
		return
	}
	for id, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), id.String())
	}
}
