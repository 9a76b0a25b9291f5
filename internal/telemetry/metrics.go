// Package telemetry defines MpegFlow's Prometheus metrics with exactly the
// names of the production deployment document, on a registry of their own
// that `mpegflow serve` exposes on the metrics port (:9090), and the
// operator's (OperatorMetrics), which `mpegflow operator` exposes on its own.
package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// ReferenceNames are the metric names the production deployment document
// fixes. Every one is registered by New, RegisterFleet or
// RegisterWebhookCircuits (a test gathers them), and the chart's Grafana
// dashboard has one panel for each (the chart's test reads this list).
var ReferenceNames = []string{
	"mpegflow_jobs_total", "mpegflow_jobs_in_flight", "mpegflow_queue_depth", "mpegflow_worker_count",
	"mpegflow_webhook_deliveries_total", "mpegflow_webhook_consecutive_failures",
	"mpegflow_event_bus_dispatch_duration_seconds", "mpegflow_grpc_requests_total",
}

// ControlPlaneNames are the coordinator's metrics an SRE watches the
// control plane's latency and batching by, beyond the reference set: how
// long a claimable job waits for the claim that hands it to a pod, how long
// each worker call takes, how many calls each group-commit statement or
// Redis round trip carries, how long a call waits for its batch and a
// batch runs, and which pools are paused (their queues wait
// on purpose). The chart's Grafana dashboard has one panel for each in its
// control-plane row, and its alert rules read them (the chart's tests read
// this list).
var ControlPlaneNames = []string{
	"mpegflow_job_dispatch_duration_seconds", "mpegflow_grpc_request_duration_seconds", "mpegflow_group_commit_batch_size",
	"mpegflow_group_commit_wait_seconds", "mpegflow_group_commit_run_seconds", "mpegflow_pool_paused",
}

// DispatchBuckets are mpegflow_job_dispatch_duration_seconds's bucket
// bounds: milliseconds for a warm pool, tens of seconds for a pod started
// from zero, hours for a backfill. An alert's bound on its p99 is best one
// of them (histogram_quantile interpolates inside a bucket); the chart's
// schema keeps it under the last.
var DispatchBuckets = []float64{
	0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, 7200, 14400,
}

// The kinds of mpegflow_job_dispatch_duration_seconds: a customer's job,
// or a split job's task (a chunk or the stitch).
const (
	DispatchJob  = "job"
	DispatchTask = "task"
)

// Metrics holds the collectors the components update.
type Metrics struct {
	Registry *prometheus.Registry
	// JobsTotal counts jobs reaching a final state (completed, failed, cancelled).
	JobsTotal *prometheus.CounterVec
	// GRPCRequests counts coordinator calls by method.
	GRPCRequests *prometheus.CounterVec
	// GRPCDuration times coordinator calls by method, from the call's
	// arrival to its answer (a Claim's long-poll wait included).
	GRPCDuration *prometheus.HistogramVec
	// JobDispatch is, for each claim that hands a job to a pod, the time
	// since the job last became claimable (submitted, requeued, its retry
	// due, released from hold, its pool resumed), by lane and kind: for
	// kind "job" the wait a customer sees before encoding starts; "task"
	// is a split job's chunk or stitch, queued many at once on purpose. A
	// backfill lane waits for the live one by design.
	JobDispatch *prometheus.HistogramVec
	// EventDispatch times each event-bus step: publishing one event (a
	// posted one from its Post, its few milliseconds' window included, to
	// Redis's answer), and fanning one out to this replica's WebSocket
	// subscribers.
	EventDispatch prometheus.Histogram
	// WebhookDeliveries counts webhook delivery attempts by outcome:
	// delivered (2xx), retrying (failed, another attempt is scheduled),
	// failed (failed and out of retries).
	WebhookDeliveries *prometheus.CounterVec
	// EncodeSeconds counts encode time of completed jobs per organization
	// and accelerator (cpu, nvidia): the usage that billing meters.
	EncodeSeconds *prometheus.CounterVec
	// ClaimWakeups counts long-polling claims woken by a push (the wake
	// channel) rather than by their poll timer.
	ClaimWakeups prometheus.Counter
	// ClaimHandoffs counts jobs a submission handed straight to a claim
	// waiting in the same process (no push, no pop).
	ClaimHandoffs prometheus.Counter
	// GroupCommitBatch is the size of group-commit batches, by kind
	// (claim, complete, heartbeat, submit: calls made by one statement;
	// pipeline: statements of those kinds sent to Postgres together;
	// publish, pop: events published, claims' pops made, in one Redis
	// round trip).
	GroupCommitBatch *prometheus.HistogramVec
	// GroupCommitWait is, for each call a group-commit group makes, how
	// long it waited for its batch to start (lingering or gathering for
	// company, or for a running batch to end); GroupCommitRun how long each
	// batch ran. By kind, as GroupCommitBatch. A call's wait and its
	// batch's run are what group commit adds to it: where a slow claim or
	// submission spends its time.
	GroupCommitWait *prometheus.HistogramVec
	GroupCommitRun  *prometheus.HistogramVec
}

// GroupCommitKinds are the kinds of the group-commit metrics that time
// their calls: the coordinator's statements (claim, complete, heartbeat)
// and Redis pops, the API's submissions and Redis pushes, and the
// pipelines that carry those statements to Postgres.
var GroupCommitKinds = []string{"claim", "complete", "heartbeat", "pop", "submit", "push", "pipeline"}

// GroupCommit is kind's observers: each batch's size, each call's wait
// for its batch, each batch's run time.
func (m *Metrics) GroupCommit(kind string) (sizes, waits, runs prometheus.Observer) {
	return m.GroupCommitBatch.WithLabelValues(kind), m.GroupCommitWait.WithLabelValues(kind), m.GroupCommitRun.WithLabelValues(kind)
}

// New registers the metrics (and Go/process collectors) on a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		JobsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpegflow_jobs_total", Help: "Jobs that reached a final state, by status (completed, failed, cancelled).",
		}, []string{"status"}),
		GRPCRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpegflow_grpc_requests_total", Help: "Worker-to-coordinator gRPC calls, by method (for Reports, each report on a pod's stream).",
		}, []string{"method"}),
		GRPCDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpegflow_grpc_request_duration_seconds", Help: "Time of one worker-to-coordinator gRPC call, from its arrival to its answer (a Claim's long-poll wait included), by method (for Reports, each report on a pod's stream).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5 ms to about 33 s: a claim long-polls up to 30 s
		}, []string{"method"}),
		JobDispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpegflow_job_dispatch_duration_seconds", Help: "Time from a job's last becoming claimable (submitted, requeued, retry due, released from hold, its pool resumed) to the claim that hands it to a pod, by lane and kind (job: a customer's job; task: a split job's chunk or stitch).",
			Buckets: DispatchBuckets,
		}, []string{"lane", "kind"}),
		EventDispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mpegflow_event_bus_dispatch_duration_seconds", Help: "Time of one event-bus step: publishing an event (a posted one from its post, its window included), or fanning one out to this replica's subscribers.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpegflow_webhook_deliveries_total", Help: "Webhook delivery attempts, by outcome (delivered, retrying, failed).",
		}, []string{"status"}),
		EncodeSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpegflow_encode_seconds_total", Help: "Encode time of completed jobs, per organization and accelerator.",
		}, []string{"org_id", "accelerator"}),
		ClaimWakeups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mpegflow_claim_wakeups_total", Help: "Long-polling claims woken by a push instead of their poll timer.",
		}),
		ClaimHandoffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mpegflow_claim_handoffs_total", Help: "Submitted jobs handed straight to a claim waiting in the same process, without a push or a pop.",
		}),
		GroupCommitBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpegflow_group_commit_batch_size", Help: "Calls made together (group commit): by one statement (claim, complete, heartbeat, submit), statements in one Postgres pipeline (pipeline), or one Redis round trip (publish, pop).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"kind"}),
		GroupCommitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpegflow_group_commit_wait_seconds", Help: "Time a group-commit call waited for its batch to start (lingering for company, or for a running batch to end), by kind (claim, complete, heartbeat, pop, submit, push, pipeline).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms to about 3.3 s
		}, []string{"kind"}),
		GroupCommitRun: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpegflow_group_commit_run_seconds", Help: "Time one group-commit batch ran (its statement, pipeline or Redis round trip), by kind (claim, complete, heartbeat, pop, submit, push, pipeline).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"kind"}),
	}
	m.Registry.MustRegister(m.JobsTotal, m.GRPCRequests, m.GRPCDuration, m.JobDispatch, m.EventDispatch, m.WebhookDeliveries, m.EncodeSeconds, m.ClaimWakeups, m.ClaimHandoffs, m.GroupCommitBatch,
		m.GroupCommitWait, m.GroupCommitRun,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, lane := range apiv1.Lanes {
		for _, kind := range []string{DispatchJob, DispatchTask} {
			m.JobDispatch.WithLabelValues(lane, kind)
		}
	}
	m.GroupCommitBatch.WithLabelValues("claim")
	m.GroupCommitBatch.WithLabelValues("complete")
	for _, kind := range GroupCommitKinds {
		m.GroupCommitWait.WithLabelValues(kind)
		m.GroupCommitRun.WithLabelValues(kind)
	}
	for _, s := range []string{"completed", "failed", "cancelled"} {
		m.JobsTotal.WithLabelValues(s) // export zeros so rates work from the start
	}
	for _, s := range []string{"delivered", "retrying", "failed"} {
		m.WebhookDeliveries.WithLabelValues(s)
	}
	return m
}

// FleetState is the cluster-wide picture read at scrape time.
type FleetState struct {
	InFlight   map[string]int            // running jobs per pool
	QueueDepth map[string]int64          // unclaimed ids per pool (all lanes)
	Paused     map[string]bool           // pause state per pool (by hand or schedule)
	Workers    map[string]map[string]int // workers per pool and status
}

// FleetSource reads the fleet state (the dispatcher implements it).
type FleetSource interface {
	FleetState(ctx context.Context) (FleetState, error)
}

// fleetCollector reads Postgres and Redis on each scrape, so every replica
// reports the same cluster-wide values: aggregate them with max, not sum.
type fleetCollector struct {
	src                                 FleetSource
	log                                 *slog.Logger
	inFlight, depth, workerDesc, paused *prometheus.Desc
}

// RegisterFleet adds mpegflow_jobs_in_flight, mpegflow_queue_depth,
// mpegflow_worker_count and mpegflow_pool_paused, read from src at scrape
// time.
func (m *Metrics) RegisterFleet(src FleetSource, log *slog.Logger) {
	m.Registry.MustRegister(&fleetCollector{
		src: src, log: log,
		inFlight:   prometheus.NewDesc("mpegflow_jobs_in_flight", "Jobs running now, per pool.", []string{"pool_id"}, nil),
		depth:      prometheus.NewDesc("mpegflow_queue_depth", "Jobs waiting to be claimed, per pool (KEDA's scaling input).", []string{"pool_id"}, nil),
		workerDesc: prometheus.NewDesc("mpegflow_worker_count", "Workers per pool and status.", []string{"pool_id", "status"}, nil),
		paused:     prometheus.NewDesc("mpegflow_pool_paused", "1 while a pool is paused (by hand or by its schedule), else 0: its queued jobs wait on purpose.", []string{"pool_id"}, nil),
	})
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.depth
	ch <- c.workerDesc
	ch <- c.paused
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.src.FleetState(ctx)
	if err != nil {
		c.log.Warn("fleet metrics unavailable this scrape; check Postgres and Redis", slog.Any("error", err))
		return
	}
	for pool, n := range st.InFlight {
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(n), pool)
	}
	for pool, n := range st.QueueDepth {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), pool)
	}
	for pool, p := range st.Paused {
		v := 0.0
		if p {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, v, pool)
	}
	for pool, byStatus := range st.Workers {
		for status, n := range byStatus {
			ch <- prometheus.MustNewConstMetric(c.workerDesc, prometheus.GaugeValue, float64(n), pool, status)
		}
	}
}
