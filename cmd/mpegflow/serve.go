package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/dispatcher"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

func serveCmd() *cobra.Command {
	var migrate, rest, grpcOn, services bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the REST API (:8080), the coordinator (:50051), the background services and metrics (:9090)",
		Long: "serve runs, in one process, the REST API, the worker-facing gRPC coordinator, the background\n" +
			"services and the metrics endpoint. --rest=false or --grpc=false splits the roles across processes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.Require("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "MPEGFLOW_SERVER_SECRET"); err != nil {
				return err
			}
			if !rest && !grpcOn && !services {
				return errors.New("nothing to serve: enable at least one of --rest, --grpc, --services")
			}
			if migrate {
				if err := migrateUp(cfg.DatabaseURL, log); err != nil {
					return err
				}
			}
			pool, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			ropts, err := redis.ParseURL(cfg.RedisURL)
			if err != nil {
				return fmt.Errorf("REDIS_URL: %w", err)
			}
			rdb := redis.NewClient(ropts)
			defer rdb.Close()
			objects, err := objstore.New(cfg.S3)
			if err != nil {
				return err
			}
			st := store.New(pool)
			q := queue.New(rdb, queue.NewKeys(cfg.RedisKeyPrefix))
			metrics := telemetry.New()
			bus := events.NewBus(q, time.Now)
			bus.ObserveDispatch(func(d time.Duration) { metrics.EventDispatch.Observe(d.Seconds()) })
			coord, err := dispatcher.New(dispatcher.Config{
				Secret: []byte(cfg.ServerSecret), Lease: cfg.Lease, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
			}, st, q, objects, bus, metrics, log)
			if err != nil {
				return err
			}
			metrics.RegisterFleet(coord, log)

			g, gctx := errgroup.WithContext(ctx)
			if rest {
				api, err := apiserver.New(apiserver.Config{BodyLimit: cfg.BodyLimit, AllowHTTPInputs: cfg.AllowHTTP, Metrics: metrics},
					st, q, objects, bus, log)
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", cfg.HTTPAddr)
				if err != nil {
					return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
				}
				log.InfoContext(ctx, "serving REST API", slog.String("addr", ln.Addr().String()))
				g.Go(func() error { return api.Serve(gctx, ln) })
			}
			if grpcOn {
				ln, err := net.Listen("tcp", cfg.GRPCAddr)
				if err != nil {
					return fmt.Errorf("listen on GRPC_ADDR %s: %w", cfg.GRPCAddr, err)
				}
				log.InfoContext(ctx, "serving coordinator", slog.String("addr", ln.Addr().String()))
				g.Go(func() error { return coord.Serve(gctx, ln) })
			}
			if services {
				svc := dispatcher.NewServices(coord, dispatcher.ServicesConfig{
					StaleJobRecovery: cfg.StaleJobRecovery, StaleWorkerSweeper: cfg.StaleWorkerSweep,
					OfflineWorkerReaper: cfg.OfflineWorkerReap, DelayedJobPromoter: cfg.DelayedPromote, QueueReconciler: cfg.QueueReconcile,
				})
				g.Go(func() error { return svc.Run(gctx) })
			}
			metricsLn, err := net.Listen("tcp", cfg.MetricsAddr)
			if err != nil {
				return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
			}
			log.InfoContext(ctx, "serving metrics", slog.String("addr", metricsLn.Addr().String()))
			srv := &http.Server{Handler: promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
			g.Go(func() error {
				if err := srv.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return fmt.Errorf("serve metrics: %w", err)
				}
				return nil
			})
			g.Go(func() error {
				<-gctx.Done()
				return srv.Close()
			})
			return g.Wait()
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migrations before serving")
	cmd.Flags().BoolVar(&rest, "rest", true, "serve the REST API on HTTP_ADDR")
	cmd.Flags().BoolVar(&grpcOn, "grpc", true, "serve the coordinator on GRPC_ADDR")
	cmd.Flags().BoolVar(&services, "services", true, "run the background services")
	return cmd
}

func migrateUp(databaseURL string, log *slog.Logger) error {
	m, err := store.NewMigrator(databaseURL, log)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}
