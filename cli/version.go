package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// versionLine is what `mpegflow version` and `mpegflow --version` print: the
// release (main's version, which release builds stamp with -ldflags "-X
// main.version=v1.2.3"), the Go toolchain and the platform, which a bug
// report needs.
func versionLine(version string) string {
	return fmt.Sprintf("mpegflow %s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCmd(version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, Go version and platform",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine(version))
			return err
		},
	}
}
