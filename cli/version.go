package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is the release this binary was built from. Release builds set it
// with -ldflags "-X main.version=v1.2.3"; anything else is "dev".
var version = "dev"

// versionLine is what `mpegflow version` and `mpegflow --version` print: the
// release, the Go toolchain and the platform, which a bug report needs.
func versionLine() string {
	return fmt.Sprintf("mpegflow %s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, Go version and platform",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
