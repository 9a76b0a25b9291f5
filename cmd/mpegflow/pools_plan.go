package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

// poolsPlanCmd prints what the operator would apply for a pool. It reads the
// pool from Postgres with the operator's own configuration and read-only
// role (MPEGFLOW_OPERATOR_DATABASE_URL), so the plan is exactly what the
// operator renders: namespace, image, coordinator and Redis addresses are
// platform settings. It is the operator-side view, for platform operators;
// tenants get the same bytes from GET /v1/pools/{id}/plan (Accept:
// application/yaml) on an API server given the same environment. Both
// render through operator.Plan.
func poolsPlanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plan POOL",
		Short: "Print the Kubernetes objects the operator applies for a pool (YAML, secrets redacted)",
		Long: "plan reads the pool through the operator's read-only database role and prints, in apply order, its\n" +
			"worker Secret (redacted), TriggerAuthentication, NetworkPolicy and ScaledJobs. It takes the\n" +
			"operator's environment (see `mpegflow operator --help`).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, run, err := operator.FromEnv(os.Getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			ctx := cmd.Context()
			db, err := store.Open(ctx, run.DatabaseURL)
			if err != nil {
				return err
			}
			defer db.Close()
			pools, err := store.New(db).ListAllPools(ctx)
			if err != nil {
				return fmt.Errorf("read pools: %w", err)
			}
			for _, p := range pools {
				if p.ID == args[0] {
					out, err := operator.Plan(cfg, p)
					if err != nil {
						return err
					}
					_, err = cmd.OutOrStdout().Write(out)
					return err
				}
			}
			return fmt.Errorf("pool %s not found", args[0])
		},
	}
}
