//go:build linux

package encoder

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestKeepEnvironmentPrivate: in a process of its own (the test binary run
// again), the process is dumpable before and not after.
func TestKeepEnvironmentPrivate(t *testing.T) {
	if os.Getenv("MPEGFLOW_TEST_PRIVATE_CHILD") == "1" {
		before, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		require.NoError(t, err)
		require.NoError(t, KeepEnvironmentPrivate())
		after, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		require.NoError(t, err)
		fmt.Printf("dumpable %d then %d\n", before, after)
		return
	}
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKeepEnvironmentPrivate$", "-test.v")
	cmd.Env = append(os.Environ(), "MPEGFLOW_TEST_PRIVATE_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "dumpable 1 then 0")
}
