package cli

import (
	"github.com/spf13/cobra"
)

// Extensions are the commands of the binary that are not the API client's:
// they run a server role or read the database directly, so they are wired in
// cmd/mpegflow and handed in here, which keeps this package free of the
// servers, the store and the coordinator.
type Extensions struct {
	// Commands are added at the top level (serve, migrate, admin, encode,
	// dev, operator).
	Commands []*cobra.Command
	// Pools are added under `mpegflow pools` (plan, which reads the pool
	// through the operator's database role).
	Pools []*cobra.Command
}

// NewRoot is the `mpegflow` command: the client verbs (jobs, pools,
// workflows, assets…), then ext. version is what `mpegflow version` prints.
// Every group that is not itself runnable refuses an unknown subcommand as a
// usage error (ExitCode 2), as does the root.
func NewRoot(version string, ext Extensions) *cobra.Command {
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
	root.SetVersionTemplate(versionLine(version) + "\n")
	root.SuggestionsMinimumDistance = 2
	// Every command's flag errors are usage errors (children inherit this).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%s (see '%s --help')", err, c.CommandPath())
	})
	pools := poolsCmd()
	pools.AddCommand(ext.Pools...)
	root.AddCommand(versionCmd(version), loginCmd(), configCmd(), webhooksCmd(), membersCmd(), apiKeysCmd(), usageCmd(), workersCmd(), jobsCmd(), pools, platformCmd(), workflowsCmd(), assetsCmd(), backfillCmd(), batchesCmd())
	root.AddCommand(ext.Commands...)
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
