package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/encoder"
)

func encodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "encode",
		Short: "Encode pod entrypoint: claim one job, encode it, upload, complete, exit",
		Long: "encode claims one job from the coordinator (MPEGFLOW_COORDINATOR, MPEGFLOW_POOL, MPEGFLOW_WORKER_TOKEN),\n" +
			"runs it and exits 0. With no job within MPEGFLOW_CLAIM_WAIT it exits 0 at once. SIGTERM stops FFmpeg\n" +
			"and hands the job back to the queue.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := encoder.KeepEnvironmentPrivate(); err != nil {
				return err
			}
			cfg, err := encoder.FromEnv(os.Getenv)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			// SIGTERM must not cancel the job's context outright: the worker
			// first stops FFmpeg and reports the job as preempted.
			stop := make(chan struct{})
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
			defer signal.Stop(sigs)
			go func() {
				if _, ok := <-sigs; ok {
					close(stop)
				}
			}()
			return encoder.Run(context.WithoutCancel(cmd.Context()), cfg, stop, log)
		},
	}
}
