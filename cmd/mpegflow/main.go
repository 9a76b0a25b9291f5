// Command mpegflow is MpegFlow's one binary: the same image runs the API and
// coordinator (serve), migrations, administration, the encode pod (encode),
// the single-machine stack (dev) and the client verbs (jobs, pools,
// workflows, assets), each as a subcommand.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mpegflow:", err)
		os.Exit(exitCode(err))
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mpegflow",
		Short:         "Kubernetes-native video transcoding",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		// Arguments reach RunE, which refuses an unknown command as a
		// usage error (exit 2) instead of cobra's exit-1 error.
		Args: cobra.ArbitraryArgs,
		RunE: unknownCommand,
	}
	root.PersistentFlags().String("context", "", "CLI context to use instead of the current one (`mpegflow config get-contexts` lists them)")
	root.SetVersionTemplate(versionLine() + "\n")
	root.SuggestionsMinimumDistance = 2
	// Every command's flag errors are usage errors (children inherit this).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%s (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(versionCmd(), loginCmd(), configCmd(), webhooksCmd(), membersCmd(), apiKeysCmd(), usageCmd(), workersCmd(), serveCmd(), migrateCmd(), adminCmd(), encodeCmd(), jobsCmd(), withPoolsPlan(poolsCmd()), workflowsCmd(), assetsCmd(), backfillCmd(), batchesCmd(), devCmd(), operatorCmd())
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands gives every command that only groups others
// (migrate, admin, dev…) unknownCommand as its RunE, so `mpegflow migrate
// nope` is a usage error rather than a help page that exits 0.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if !c.Runnable() && c.HasSubCommands() {
			c.RunE = unknownCommand
		}
		refuseUnknownSubcommands(c)
	}
}

// loadConfig reads the environment and builds the JSON logger every server
// role logs with.
func loadConfig() (config.Config, *slog.Logger, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return cfg, nil, fmt.Errorf("configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return cfg, log, nil
}
