package operator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// Run is `mpegflow operator`: it refuses a database login that can write
// (unless run.AllowWriteLogin), serves the probes on run.HealthAddr and the
// metrics on run.MetricsAddr, and campaigns for the Lease, reconciling
// while it leads, until ctx ends or leadership is lost.
func Run(ctx context.Context, cfg Config, run RunConfig, rc *rest.Config, log *slog.Logger) error {
	db, err := store.Open(ctx, run.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	pools := store.New(db)
	if err := CheckReadOnly(ctx, pools, run.AllowWriteLogin, log); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	metrics := telemetry.NewOperator()
	status, err := NewStatus(StatusConfig{Period: run.Period, LeaseDuration: run.Leader.LeaseDuration, UnreadyAfterPeriods: run.UnreadyAfterPeriods},
		metrics, clock.RealClock{})
	if err != nil {
		return err
	}
	rec, err := NewReconciler(cfg, pools, dyn, log, WithPassObserver(status))
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	healthLn, err := lc.Listen(ctx, "tcp", run.HealthAddr)
	if err != nil {
		return fmt.Errorf("listen for probes (MPEGFLOW_OPERATOR_HEALTH_ADDR): %w", err)
	}
	metricsLn, err := lc.Listen(ctx, "tcp", run.MetricsAddr)
	if err != nil {
		_ = healthLn.Close()
		return fmt.Errorf("listen for metrics (MPEGFLOW_OPERATOR_METRICS_ADDR): %w", err)
	}
	log.InfoContext(ctx, "serving probes and metrics", "health_addr", healthLn.Addr().String(), "metrics_addr", metricsLn.Addr().String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, healthLn, ProbeHandler(status, log)) })
	g.Go(func() error { return serveHTTP(gctx, metricsLn, MetricsHandler(metrics.Registry)) })
	g.Go(func() error {
		defer cancel() // leadership lost or ctx ended: stop serving too
		changes := ListenPools(gctx, run.DatabaseURL, 5*time.Second, log)
		leader := run.Leader
		leader.Observer = status
		return RunAsLeader(gctx, cs, leader, log, func(ctx context.Context) {
			rec.Run(ctx, run.Period, changes)
		})
	})
	return g.Wait()
}
