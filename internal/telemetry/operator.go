package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// OperatorNames are the metrics `mpegflow operator` exports on its own
// metrics port. The chart's Grafana dashboard has one panel for each in its
// operator row (the chart's test reads this list, as it reads
// ReferenceNames).
var OperatorNames = []string{
	"mpegflow_operator_reconcile_total", "mpegflow_operator_reconcile_duration_seconds",
	"mpegflow_operator_last_success_timestamp_seconds", "mpegflow_operator_is_leader",
}

// Reconcile results, the values of mpegflow_operator_reconcile_total's
// result label.
const (
	ReconcileSuccess = "success"
	ReconcileError   = "error"
)

// OperatorMetrics are the operator's collectors, on a registry of their own:
// the operator runs in its own process, beside none of the server's metrics.
// Only the leader reconciles, so a follower exports zero passes and
// mpegflow_operator_is_leader 0; aggregate the leader's series with max.
type OperatorMetrics struct {
	Registry *prometheus.Registry
	// ReconcileTotal counts reconcile passes by result (success, error: at
	// least one pool was not applied or an object not pruned).
	ReconcileTotal *prometheus.CounterVec
	// ReconcileDuration times each pass, failed ones included.
	ReconcileDuration prometheus.Histogram
	// LastSuccess is the Unix time of the last pass that applied every pool;
	// `time() - mpegflow_operator_last_success_timestamp_seconds` is how
	// stale the cluster may be. 0 until the first success.
	LastSuccess prometheus.Gauge
	// IsLeader is 1 while this replica holds the Lease, else 0.
	IsLeader prometheus.Gauge
}

// NewOperator registers the operator's metrics (and Go/process collectors)
// on a new registry, with zeros for both results so rates work at once.
func NewOperator() *OperatorMetrics {
	m := &OperatorMetrics{
		Registry: prometheus.NewRegistry(),
		ReconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpegflow_operator_reconcile_total", Help: "Operator reconcile passes, by result (success, error).",
		}, []string{"result"}),
		ReconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mpegflow_operator_reconcile_duration_seconds", Help: "Time of one operator reconcile pass over every pool.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10 ms to about 82 s
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mpegflow_operator_last_success_timestamp_seconds", Help: "Unix time of the operator's last fully successful reconcile pass (0: none yet).",
		}),
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mpegflow_operator_is_leader", Help: "1 while this operator replica holds the leader Lease, else 0.",
		}),
	}
	m.Registry.MustRegister(m.ReconcileTotal, m.ReconcileDuration, m.LastSuccess, m.IsLeader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{ReconcileSuccess, ReconcileError} {
		m.ReconcileTotal.WithLabelValues(r)
	}
	return m
}
