package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

func operatorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "operator",
		Short: "Reconcile worker pools into KEDA ScaledJobs, NetworkPolicies and Secrets (leader-elected)",
		Long: "operator reads worker_pools through the read-only role (MPEGFLOW_OPERATOR_DATABASE_URL) and keeps,\n" +
			"per pool, its ScaledJobs, TriggerAuthentication, NetworkPolicy and worker-token Secret in\n" +
			"MPEGFLOW_OPERATOR_NAMESPACE. Only the holder of the mpegflow-operator Lease writes. It reaches the\n" +
			"cluster in-cluster or through KUBECONFIG.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, run, err := operator.FromEnv(os.Getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "operator")
			ctx := cmd.Context()
			db, err := store.Open(ctx, run.DatabaseURL)
			if err != nil {
				return err
			}
			defer db.Close()
			rc, err := kubeConfig()
			if err != nil {
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
			rec, err := operator.NewReconciler(cfg, store.New(db), dyn, log)
			if err != nil {
				return err
			}
			changes := operator.ListenPools(ctx, run.DatabaseURL, 5*time.Second, log)
			return operator.RunAsLeader(ctx, cs, run.Leader, log, func(ctx context.Context) {
				rec.Run(ctx, run.Period, changes)
			})
		},
	}
}

// kubeConfig is the in-cluster configuration, or KUBECONFIG's outside.
func kubeConfig() (*rest.Config, error) {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes configuration (in-cluster or KUBECONFIG): %w", err)
	}
	return rc, nil
}
