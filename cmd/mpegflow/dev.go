package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/dev"
)

func devCmd() *cobra.Command {
	var o dev.Options
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline on this machine: private Postgres, Redis and S3, the API, the coordinator and encoders",
		Long: `dev runs MpegFlow on one machine with the same apiserver, coordinator and encoder as a cluster:

  - a private PostgreSQL, Redis (append-only file) and S3 store (versitygw) in the data directory,
    each replaced by yours when DATABASE_URL, REDIS_URL or S3_BUCKET/S3_ENDPOINT are set; they
    listen on 127.0.0.1 and want passwords generated on the first run, kept in
    DATA/postgres-password, DATA/redis-password and DATA/s3-credentials.json (mode 0600);
  - migrations, then the REST API, the coordinator, the background services and metrics;
  - a local executor that plays KEDA's part: every polling interval it starts one
    'mpegflow encode' process per queued job (minus those still waiting for a claim), within
    each pool's max_replicas and --encoders, none while a pool is paused.

On its first run it creates the organization "Local" (owner dev@localhost) and keeps the owner's
API key in DATA/owner-key; it prints the API URL and that key, and makes them the CLI's current
context, so 'mpegflow jobs list' works with no flags. Everything (jobs, queues, outputs, the key)
survives a restart. Ctrl-C stops the encoders (their jobs go back to the queue), the servers and
the services.

Scripts: eval "$(mpegflow dev env)" exports MPEGFLOW_SERVER and MPEGFLOW_API_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PortBase != 0 {
				if o.PortBase < 1024 || o.PortBase > 65535-5 {
					return fmt.Errorf("--port-base: want a port from 1024 to %d", 65535-5)
				}
				set := func(flag string, dst *string, off int) {
					if !cmd.Flags().Changed(flag) {
						*dst = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.PortBase+off))
					}
				}
				set("http-addr", &o.HTTPAddr, 0)
				set("grpc-addr", &o.GRPCAddr, 1)
				set("metrics-addr", &o.MetricsAddr, 2)
			}
			if o.Encoders < 0 {
				return errors.New("--encoders: want 0 (the default cap) or more")
			}
			if o.PollInterval < 0 {
				return errors.New("--poll-interval: want 0 (each pool's interval) or a positive duration")
			}
			return dev.Run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	cmd.PersistentFlags().StringVar(&o.Data, "data", "", "data directory (default $MPEGFLOW_DEV_DATA, else ~/.local/share/mpegflow/dev)")
	cmd.Flags().StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST API listen address (port 0 picks a free one)")
	cmd.Flags().StringVar(&o.GRPCAddr, "grpc-addr", "127.0.0.1:50051", "coordinator listen address")
	cmd.Flags().StringVar(&o.MetricsAddr, "metrics-addr", "127.0.0.1:9090", "metrics listen address")
	cmd.Flags().IntVar(&o.PortBase, "port-base", 0, "use ports from here on: API, coordinator, metrics, then Postgres, Redis and S3 (+0..+5)")
	cmd.Flags().IntVar(&o.Encoders, "encoders", 0, "most encode processes at once (default half the CPUs, at least 1)")
	cmd.Flags().DurationVar(&o.PollInterval, "poll-interval", time.Second, "how often queues are polled; 0 uses each pool's polling_interval_seconds as KEDA does")
	cmd.AddCommand(devEnvCmd(&o.Data))
	return cmd
}

func devEnvCmd(data *string) *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: `Print export lines for the dev stack's API URL and owner key: eval "$(mpegflow dev env)"`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev.PrintEnv(cmd.OutOrStdout(), *data)
		},
	}
}
