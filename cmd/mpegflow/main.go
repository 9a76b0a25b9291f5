// Command mpegflow is MpegFlow's one binary: the same image runs the API and
// coordinator (serve), migrations, administration, the encode pod (encode),
// the single-machine stack (dev) and the client verbs (jobs, pools,
// workflows, assets), each as a subcommand.
//
// This package only wires: the client verbs live in cli/, and each server
// role has one file here that builds its component from the configuration.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // pause windows name IANA zones; the image may have no zoneinfo

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/cli"
	"github.com/mpegflow/mpegflow/internal/config"
)

// version is the release this binary was built from. Release builds set it
// with -ldflags "-X main.version=v1.2.3"; anything else is "dev".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mpegflow:", err)
		os.Exit(cli.ExitCode(err))
	}
}

func rootCmd() *cobra.Command {
	return cli.NewRoot(version, cli.Extensions{
		Commands: []*cobra.Command{serveCmd(), migrateCmd(), adminCmd(), encodeCmd(), devCmd(), operatorCmd()},
		Pools:    []*cobra.Command{poolsPlanCmd()},
	})
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
