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
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

func serveCmd() *cobra.Command {
	var migrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the REST API (:8080) and the metrics endpoint (:9090)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.Require("DATABASE_URL", "REDIS_URL", "S3_BUCKET"); err != nil {
				return err
			}
			if migrate {
				m, err := store.NewMigrator(cfg.DatabaseURL, log)
				if err != nil {
					return err
				}
				err = m.Up()
				m.Close()
				if err != nil {
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
			q := queue.New(rdb, queue.NewKeys(cfg.RedisKeyPrefix))
			api, err := apiserver.New(apiserver.Config{BodyLimit: cfg.BodyLimit, AllowHTTPInputs: cfg.AllowHTTP},
				store.New(pool), q, objects, events.NewBus(q, time.Now), log)
			if err != nil {
				return err
			}
			httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
			}
			metricsLn, err := net.Listen("tcp", cfg.MetricsAddr)
			if err != nil {
				httpLn.Close()
				return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
			}
			log.InfoContext(ctx, "serving", slog.String("http_addr", httpLn.Addr().String()), slog.String("metrics_addr", metricsLn.Addr().String()))
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return api.Serve(gctx, httpLn) })
			metrics := &http.Server{Handler: promhttp.Handler(), ReadHeaderTimeout: 10 * time.Second}
			g.Go(func() error {
				if err := metrics.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return fmt.Errorf("serve metrics: %w", err)
				}
				return nil
			})
			g.Go(func() error {
				<-gctx.Done()
				return metrics.Close()
			})
			return g.Wait()
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migrations before serving")
	return cmd
}
