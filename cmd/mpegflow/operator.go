package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mpegflow/mpegflow/operator"
)

func operatorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "operator",
		Short: "Reconcile worker pools into KEDA ScaledJobs, NetworkPolicies and Secrets (leader-elected)",
		Long: "operator reads worker_pools through the read-only role (MPEGFLOW_OPERATOR_DATABASE_URL) and keeps,\n" +
			"per pool, its ScaledJobs, TriggerAuthentication, NetworkPolicy and worker-token Secret in\n" +
			"MPEGFLOW_OPERATOR_NAMESPACE. Only the holder of the mpegflow-operator Lease writes. It reaches the\n" +
			"cluster in-cluster or through KUBECONFIG. It refuses a database login that can write unless\n" +
			"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN=true, and serves /healthz and /readyz on\n" +
			"MPEGFLOW_OPERATOR_HEALTH_ADDR (:8081) and /metrics on MPEGFLOW_OPERATOR_METRICS_ADDR (:9090).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, run, err := operator.FromEnv(os.Getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: run.LogLevel})).With("component", "operator")
			rc, err := kubeConfig()
			if err != nil {
				return err
			}
			return operator.Run(cmd.Context(), cfg, run, rc, log)
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
