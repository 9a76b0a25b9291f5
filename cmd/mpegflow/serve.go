package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
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
			plan, err := planConfig(os.Getenv)
			if err != nil {
				return err
			}
			s, err := openStack(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer s.Close()
			s.plan = plan
			return s.serve(ctx, roles{rest: rest, grpc: grpcOn, services: services})
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

// planConfig reads the operator's render configuration when the API server
// is given it (MPEGFLOW_ENCODER_IMAGE set, plus the other variables of
// `mpegflow operator`), so GET /v1/pools/{id}/plan shows exactly what the
// operator applies. Without it that route answers 503; with it but
// incomplete, serve refuses to start.
func planConfig(getenv func(string) string) (*operator.Config, error) {
	if getenv("MPEGFLOW_ENCODER_IMAGE") == "" {
		return nil, nil
	}
	cfg, _, err := operator.FromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("pool plans (MPEGFLOW_ENCODER_IMAGE is set, so the operator's variables must be complete): %w", err)
	}
	return &cfg, nil
}
