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
	"sort"
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

// ctr runs ctr against this containerd and returns its standard output
// (its standard error carries warnings, such as cgroup v1's deprecation
// on this host, that are no part of an answer).
func (c *containerd) ctr(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.ctrBin, append([]string{"--address", c.Address}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
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

// unmountUnder detaches every mount below dir, deepest first: the kubelet
// bind-mounts its root directory onto itself, and a sandbox whose pod was
// not stopped through CRI keeps its /dev/shm mount.
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
}

// killTasks kills and deletes whatever task a failed test left in the
// k8s.io namespace, so that no shim or container outlives containerd.
func (c *containerd) killTasks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), containerdStopTimeout)
	defer cancel()
	out, err := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "list", "--quiet")
	if err != nil {
		return // containerd is gone: nothing to ask
	}
	for _, id := range strings.Fields(out) {
		t.Logf("killing task %s left behind", id)
		_, _ = c.ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--all", "--signal", "SIGKILL", id)
		_, _ = c.ctr(ctx, "--namespace", "k8s.io", "tasks", "delete", "--force", id)
	}
}

// taskStatus is the status ctr reports for a task ("RUNNING", "STOPPED"),
// or "" when there is no such task.
func (c *containerd) taskStatus(ctx context.Context, id string) string {
	out, err := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "list")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// importImage imports an image archive where CRI looks for images (the
// k8s.io namespace: the sandbox image, and images of pods with
// imagePullPolicy Never) and checks it arrived under its name.
func (c *containerd) importImage(ctx context.Context, t *testing.T, archive, image string) {
	t.Helper()
	_, err := c.ctr(ctx, "--namespace", "k8s.io", "images", "import", archive)
	require.NoError(t, err)
	images, err := c.ctr(ctx, "--namespace", "k8s.io", "images", "list", "--quiet")
	require.NoError(t, err)
	require.Contains(t, strings.Fields(images), image, "the archive must import under the name pods ask for")
}

// eventually polls cond every 200 ms until it holds, failing the test with
// what() after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nodeDir is a fresh directory for one node. Short: containerd's sockets
// live under it (t.TempDir() is too long). startContainerdIn removes it.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mf-node-")
	require.NoError(t, err)
	return dir
}

// startContainerd starts containerd from binDir with a configuration of
// its own in a fresh directory, waits until it answers, and stops it and
// removes the directory when the test ends.
func startContainerd(t *testing.T, binDir, runc, sandboxImage string) *containerd {
	t.Helper()
	return startContainerdIn(t, binDir, node.ContainerdConfig{Dir: nodeDir(t), Runc: runc, SandboxImage: sandboxImage})
}

// startContainerdIn is startContainerd with a configuration of the
// caller's (cfg.Dir from nodeDir).
func startContainerdIn(t *testing.T, binDir string, ccfg node.ContainerdConfig) *containerd {
	t.Helper()
	dir := ccfg.Dir
	cfg, err := node.WriteContainerdConfig(ccfg)
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
		c.killTasks(t)
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
		unmountUnder(t, dir)
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
	c.importImage(ctx, t, archive, image)

	const id = "mpegflow-pause"
	var runOut bytes.Buffer
	run := exec.CommandContext(ctx, c.ctrBin, "--address", c.Address, "--namespace", "k8s.io",
		"run", "--rm", "--null-io", "--runc-binary", runc, image, id)
	run.Stdout, run.Stderr = &runOut, &runOut
	require.NoError(t, run.Start())
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()

	eventually(t, containerTimeout, func() bool { return c.taskStatus(ctx, id) == "RUNNING" },
		func() string { return fmt.Sprintf("task %s running; ctr run says:\n%s", id, runOut.String()) })

	// RUNNING means runc started the process, not that the Go runtime in it
	// has installed its handler yet; until then SIGTERM to a PID 1 is
	// dropped. So the signal is repeated until the task exits: a program
	// that never handles it still never exits, and the test fails.
	deadline := time.After(containerTimeout)
	for {
		_, err := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGTERM", id)
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
	containers, err := c.ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet")
	require.NoError(t, err)
	require.NotContains(t, strings.Fields(containers), id, "ctr run --rm must remove the container")
}
