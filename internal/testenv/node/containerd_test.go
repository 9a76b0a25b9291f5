//go:build cluster

package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

// Variables `make test-cluster` sets from what `make node-tools` built.
const (
	runcEnv          = "MPEGFLOW_NODE_RUNC"
	containerdDirEnv = "MPEGFLOW_NODE_CONTAINERD_DIR"
	pauseArchiveEnv  = "MPEGFLOW_NODE_PAUSE_ARCHIVE"
	pauseImageEnv    = "MPEGFLOW_NODE_PAUSE_IMAGE"
)

// Timeouts on a loaded two-core machine: containerd starts in about a
// second, a container in a few.
const (
	containerdReadyTimeout = 60 * time.Second
	containerdStopTimeout  = 15 * time.Second
	containerTimeout       = 60 * time.Second
)

func need(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `make test-cluster`, which builds the node (make node-tools) and sets it", name)
	}
	return v
}

// containerd is a running containerd of one test.
type containerd struct {
	node.Containerd
	ctrBin string
	log    string
}

// ctr runs ctr against this containerd and returns its combined output.
func (c *containerd) ctr(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, c.ctrBin, append([]string{"--address", c.Address}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// logTail is the end of containerd's log, for failure messages.
func (c *containerd) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startContainerd starts containerd from binDir with a configuration of
// its own in a fresh directory, waits until it answers, and stops it and
// removes the directory when the test ends.
func startContainerd(t *testing.T, binDir, runc, sandboxImage string) *containerd {
	t.Helper()
	// Short: containerd's sockets live under it (t.TempDir() is too long).
	dir, err := os.MkdirTemp("", "mf-node-")
	require.NoError(t, err)
	cfg, err := node.WriteContainerdConfig(node.ContainerdConfig{Dir: dir, Runc: runc, SandboxImage: sandboxImage})
	require.NoError(t, err)
	c := &containerd{Containerd: cfg, ctrBin: filepath.Join(binDir, "ctr"), log: filepath.Join(dir, "containerd.log")}

	logFile, err := os.Create(c.log)
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(binDir, "containerd"), "--config", cfg.Config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start containerd")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(containerdStopTimeout):
			t.Errorf("containerd did not stop within %s of SIGTERM; killed it", containerdStopTimeout)
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			t.Logf("containerd log (%s):\n%s", c.log, c.logTail())
			t.Logf("left %s in place for a look", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the node's directory (a mount left behind?): %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), containerdReadyTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.ctr(ctx, "version"); err == nil {
			return c
		}
		select {
		case err := <-exited:
			t.Fatalf("containerd exited before it answered: %v\n%s", err, c.logTail())
		case <-ctx.Done():
			t.Fatalf("containerd did not answer on %s within %s:\n%s", c.Address, containerdReadyTimeout, c.logTail())
		case <-tick.C:
		}
	}
}

// TestContainerdRunsPause runs the local pause image with containerd and
// the runc that `make node-tools` built: the image imports under its name,
// the container starts, and SIGTERM ends it with exit status 0 (so the
// program, as PID 1 of its own namespace, handled the signal itself).
func TestContainerdRunsPause(t *testing.T) {
	t.Parallel()
	runc := need(t, runcEnv)
	binDir := need(t, containerdDirEnv)
	archive := need(t, pauseArchiveEnv)
	image := need(t, pauseImageEnv)
	c := startContainerd(t, binDir, runc, image)

	ctx, cancel := context.WithTimeout(t.Context(), 2*containerTimeout)
	defer cancel()
	// The CRI plugin looks for the sandbox image in the k8s.io namespace.
	_, err := c.ctr(ctx, "--namespace", "k8s.io", "images", "import", archive)
	require.NoError(t, err)
	images, err := c.ctr(ctx, "--namespace", "k8s.io", "images", "list", "--quiet")
	require.NoError(t, err)
	require.Contains(t, strings.Fields(images), image, "the archive must import under the name the sandbox is pinned to")

	const id = "mpegflow-pause"
	var runOut bytes.Buffer
	run := exec.CommandContext(ctx, c.ctrBin, "--address", c.Address, "--namespace", "k8s.io",
		"run", "--rm", "--null-io", "--runc-binary", runc, image, id)
	run.Stdout, run.Stderr = &runOut, &runOut
	require.NoError(t, run.Start())
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()

	running := func() bool {
		out, err := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "list")
		if err != nil {
			return false
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == id && f[2] == "RUNNING" {
				return true
			}
		}
		return false
	}
	deadline := time.NewTimer(containerTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !running() {
		select {
		case err := <-done:
			t.Fatalf("ctr run ended before the task ran: %v\n%s", err, runOut.String())
		case <-deadline.C:
			t.Fatalf("task %s not running within %s; ctr run says:\n%s", id, containerTimeout, runOut.String())
		case <-tick.C:
		}
	}

	_, err = c.ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGTERM", id)
	require.NoError(t, err)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("the pause container exited %d after SIGTERM, want 0:\n%s", exit.ExitCode(), runOut.String())
		}
		require.NoError(t, err, runOut.String())
	case <-time.After(containerTimeout):
		t.Fatalf("the pause container did not exit within %s of SIGTERM:\n%s", containerTimeout, runOut.String())
	}
	containers, err := c.ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet")
	require.NoError(t, err)
	require.NotContains(t, strings.Fields(containers), id, "ctr run --rm must remove the container")
}
