//go:build cluster

package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// A container starts within a few seconds on a loaded two-core machine.
const containerTimeout = 60 * time.Second

// TestContainerdRunsPause runs the local pause image with containerd and
// the runc that `make node-tools` built: the image imports under its name,
// the container starts, and SIGTERM ends it with exit status 0 (so the
// program, as PID 1 of its own namespace, handled the signal itself).
func TestContainerdRunsPause(t *testing.T) {
	t.Parallel()
	runc := cluster.Need(t, cluster.RuncEnv)
	binDir := cluster.Need(t, cluster.ContainerdDirEnv)
	archive := cluster.Need(t, cluster.PauseArchiveEnv)
	image := cluster.Need(t, cluster.PauseImageEnv)
	c := cluster.StartContainerd(t, binDir, runc, image)

	ctx, cancel := context.WithTimeout(t.Context(), 2*containerTimeout)
	defer cancel()
	c.ImportImage(ctx, t, archive, image)

	const id = "mpegflow-pause"
	var runOut bytes.Buffer
	run := exec.CommandContext(ctx, c.CtrBin, "--address", c.Address, "--namespace", "k8s.io",
		"run", "--rm", "--null-io", "--runc-binary", runc, image, id)
	run.Stdout, run.Stderr = &runOut, &runOut
	require.NoError(t, run.Start())
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()

	cluster.Eventually(t, containerTimeout, func() bool { return c.TaskStatus(ctx, id) == "RUNNING" },
		func() string { return fmt.Sprintf("task %s running; ctr run says:\n%s", id, runOut.String()) })

	// RUNNING means runc started the process, not that the Go runtime in it
	// has installed its handler yet; until then SIGTERM to a PID 1 is
	// dropped. So the signal is repeated until the task exits: a program
	// that never handles it still never exits, and the test fails.
	deadline := time.After(containerTimeout)
	for {
		_, err := c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGTERM", id)
		require.NoError(t, err)
		select {
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				t.Fatalf("the pause container exited %d after SIGTERM, want 0:\n%s", exit.ExitCode(), runOut.String())
			}
			require.NoError(t, err, runOut.String())
		case <-deadline:
			t.Fatalf("the pause container did not exit within %s of SIGTERM:\n%s", containerTimeout, runOut.String())
		case <-time.After(time.Second):
			continue
		}
		break
	}
	containers, err := c.Ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet")
	require.NoError(t, err)
	require.NotContains(t, strings.Fields(containers), id, "ctr run --rm must remove the container")
}
