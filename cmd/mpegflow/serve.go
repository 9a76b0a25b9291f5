package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/gcpolicy"
	"github.com/mpegflow/mpegflow/internal/server"
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
			// Fewer collections for a short dispatch tail, under the
			// container's memory limit (GOGC, GOMEMLIMIT override).
			gcpolicy.Apply(ctx, nil, log)
			if !rest && !grpcOn && !services {
				return errors.New("nothing to serve: enable at least one of --rest, --grpc, --services")
			}
			if migrate {
				if err := server.MigrateUp(cfg.DatabaseURL, log); err != nil {
					return err
				}
			}
			// With the operator's variables (the chart passes them when it
			// runs the operator), GET /v1/pools/{id}/plan shows what the
			// operator applies; without them it answers 503.
			plan, err := operator.PlannerFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			s, err := server.Open(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer s.Close()
			if plan != nil {
				s.Plan = plan
			}
			return s.Serve(ctx, server.Roles{REST: rest, GRPC: grpcOn, Services: services})
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migrations before serving")
	cmd.Flags().BoolVar(&rest, "rest", true, "serve the REST API on HTTP_ADDR")
	cmd.Flags().BoolVar(&grpcOn, "grpc", true, "serve the coordinator on GRPC_ADDR")
	cmd.Flags().BoolVar(&services, "services", true, "run the background services")
	return cmd
}
