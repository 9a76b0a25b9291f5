package dispatcher

import (
	"cmp"
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/internal/periodic"
)

// ServicesConfig sets the background services' periods and thresholds;
// zero values take design.md's defaults.
type ServicesConfig struct {
	StaleJobRecovery    time.Duration // period, default 60 s
	StaleWorkerSweeper  time.Duration // period, default 60 s
	WorkerTTL           time.Duration // a worker silent this long goes offline, default 3 min
	OfflineWorkerReaper time.Duration // period, default 300 s
	OfflineGrace        time.Duration // offline workers are deleted after this, default 2 h
	DelayedJobPromoter  time.Duration // period, default 5 s
	QueueReconciler     time.Duration // period, default 30 s
	WebhookExecutor     time.Duration // period, default 5 s
	StaleUploadSweeper  time.Duration // period, default 10 min
	// ScheduleEvaluator is how often pause-window edges are looked for
	// (default 1 s): an edge applies within this period on every replica.
	ScheduleEvaluator time.Duration
	// UploadTTL: a multipart upload still open this long after its asset
	// was created is aborted (default 7 days).
	UploadTTL time.Duration
	// Webhooks tunes the Webhook Executor's attempts, retries and circuit.
	Webhooks WebhookConfig
	// ReconcileGrace: a queued job is re-pushed only once it has been queued
	// this long without being claimed, so a push still in flight is not
	// doubled (default 10 s). Doubling would be harmless, only wasteful.
	ReconcileGrace time.Duration
	// Batch bounds the rows one round of a service touches (default 500).
	Batch int
}

func (s *ServicesConfig) defaults() {
	s.StaleJobRecovery = cmp.Or(s.StaleJobRecovery, 60*time.Second)
	s.StaleWorkerSweeper = cmp.Or(s.StaleWorkerSweeper, 60*time.Second)
	s.WorkerTTL = cmp.Or(s.WorkerTTL, 3*time.Minute)
	s.OfflineWorkerReaper = cmp.Or(s.OfflineWorkerReaper, 300*time.Second)
	s.OfflineGrace = cmp.Or(s.OfflineGrace, 2*time.Hour)
	s.DelayedJobPromoter = cmp.Or(s.DelayedJobPromoter, 5*time.Second)
	s.QueueReconciler = cmp.Or(s.QueueReconciler, 30*time.Second)
	s.WebhookExecutor = cmp.Or(s.WebhookExecutor, 5*time.Second)
	s.StaleUploadSweeper = cmp.Or(s.StaleUploadSweeper, 10*time.Minute)
	s.ScheduleEvaluator = cmp.Or(s.ScheduleEvaluator, time.Second)
	s.UploadTTL = cmp.Or(s.UploadTTL, 7*24*time.Hour)
	s.ReconcileGrace = cmp.Or(s.ReconcileGrace, 10*time.Second)
	s.Batch = cmp.Or(s.Batch, 500)
}

// Services are the background services of design.md. Every replica runs all
// of them: each round takes its rows with FOR UPDATE SKIP LOCKED, an atomic
// Redis step or an advisory lock, so replicas never do the same work twice.
type Services struct {
	c        *Coordinator
	cfg      ServicesConfig
	webhooks *WebhookExecutor
	schedule *ScheduleEvaluator
}

// NewServices returns the services of coordinator c.
func NewServices(c *Coordinator, cfg ServicesConfig) *Services {
	cfg.defaults()
	return &Services{
		c: c, cfg: cfg, webhooks: NewWebhookExecutor(cfg.Webhooks, c.store, c.cfg.Clock, c.metrics, c.log),
		schedule: NewScheduleEvaluator(c.store, c.queue, c.bus, c.cfg.Clock, c.log),
	}
}

// EvaluateSchedules runs one round of the Schedule Evaluator.
func (s *Services) EvaluateSchedules(ctx context.Context) (int, error) {
	return s.schedule.Evaluate(ctx)
}

// DeliverWebhooks runs one round of the Webhook Executor.
func (s *Services) DeliverWebhooks(ctx context.Context) (int, error) { return s.webhooks.Deliver(ctx) }

// atStart is a kick already delivered: a round that takes it runs as soon
// as its loop starts instead of one period later. The queue reconciler runs
// so: a replica that starts after Redis lost keys, or after an upgrade that
// changed the queue layout (docs/design/0020-fair-share.md), repairs it at
// once rather than leaving claims empty for a period.
func atStart() <-chan struct{} {
	kick := make(chan struct{}, 1)
	kick <- struct{}{}
	return kick
}

// Run runs every service until ctx ends.
func (s *Services) Run(ctx context.Context) error {
	rounds := []periodic.Round{
		{Name: "stale_job_recovery", Period: s.cfg.StaleJobRecovery, Run: s.RecoverStaleJobs},
		{Name: "stale_worker_sweeper", Period: s.cfg.StaleWorkerSweeper, Run: s.SweepStaleWorkers},
		{Name: "offline_worker_reaper", Period: s.cfg.OfflineWorkerReaper, Run: s.ReapOfflineWorkers},
		{Name: "delayed_job_promoter", Period: s.cfg.DelayedJobPromoter, Run: s.PromoteDelayed},
		{Name: "queue_reconciler", Period: s.cfg.QueueReconciler, Run: s.ReconcileQueues, Kick: atStart()},
		{Name: "webhook_executor", Period: s.cfg.WebhookExecutor, Run: s.DeliverWebhooks},
		{Name: "stale_upload_sweeper", Period: s.cfg.StaleUploadSweeper, Run: s.SweepStaleUploads},
		{Name: "schedule_evaluator", Period: s.cfg.ScheduleEvaluator, Run: s.EvaluateSchedules},
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range rounds {
		hint := "Postgres and Redis"
		if r.Name == "stale_upload_sweeper" {
			hint = "Postgres and object storage"
		}
		g.Go(func() error { periodic.Loop(ctx, s.c.cfg.Clock, r, s.c.log, hint); return nil })
	}
	return g.Wait()
}
