//go:build cluster

package cluster

import (
	"bytes"
	"context"
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

// Timeouts on a loaded two-core machine: containerd starts in about a
// second.
const (
	containerdReadyTimeout = 60 * time.Second
	containerdStopTimeout  = 15 * time.Second
)

// Containerd is a running containerd of one test.
type Containerd struct {
	node.Containerd
	// CtrBin is the ctr binary beside containerd.
	CtrBin string
	log    string
}

// Ctr runs ctr against this containerd and returns its standard output
// (its standard error carries warnings, such as cgroup v1's deprecation
// on this host, that are no part of an answer).
func (c *Containerd) Ctr(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.CtrBin, append([]string{"--address", c.Address}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

// logTail is the end of containerd's log, for failure messages.
func (c *Containerd) logTail() string { return LogTail(c.log, 4000) }

// unmountUnder detaches every mount below dir, deepest first: the kubelet
// bind-mounts its root directory onto itself, and a sandbox whose pod was
// not stopped through CRI keeps its /dev/shm mount.
func unmountUnder(t testing.TB, dir string) {
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
func (c *Containerd) killTasks(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), containerdStopTimeout)
	defer cancel()
	out, err := c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "list", "--quiet")
	if err != nil {
		return // containerd is gone: nothing to ask
	}
	for _, id := range strings.Fields(out) {
		t.Logf("killing task %s left behind", id)
		_, _ = c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "kill", "--all", "--signal", "SIGKILL", id)
		_, _ = c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "delete", "--force", id)
	}
}

// TaskStatus is the status ctr reports for a task ("RUNNING", "STOPPED"),
// or "" when there is no such task.
func (c *Containerd) TaskStatus(ctx context.Context, id string) string {
	out, err := c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "list")
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

// ContainerOf returns the id of the CRI container named name, or "".
func (c *Containerd) ContainerOf(ctx context.Context, name string) string {
	out, err := c.Ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet",
		fmt.Sprintf(`labels."io.kubernetes.container.name"==%s`, name))
	if err != nil {
		return ""
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		return ""
	}
	return ids[0]
}

// ImportImage imports an image archive where CRI looks for images (the
// k8s.io namespace: the sandbox image, and images of pods with
// imagePullPolicy Never) and checks it arrived under its name.
func (c *Containerd) ImportImage(ctx context.Context, t testing.TB, archive, image string) {
	t.Helper()
	_, err := c.Ctr(ctx, "--namespace", "k8s.io", "images", "import", archive)
	require.NoError(t, err)
	images, err := c.Ctr(ctx, "--namespace", "k8s.io", "images", "list", "--quiet")
	require.NoError(t, err)
	require.Contains(t, strings.Fields(images), image, "the archive %s must import under the name pods ask for", archive)
}

// NodeDir is a fresh directory for one node. Short: containerd's sockets
// live under it (t.TempDir() is too long). StartContainerdIn removes it.
func NodeDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mf-node-")
	require.NoError(t, err)
	return dir
}

// StartContainerd starts containerd from binDir with a configuration of
// its own in a fresh directory, waits until it answers, and stops it and
// removes the directory when the test ends.
func StartContainerd(t testing.TB, binDir, runc, sandboxImage string) *Containerd {
	t.Helper()
	return StartContainerdIn(t, binDir, node.ContainerdConfig{Dir: NodeDir(t), Runc: runc, SandboxImage: sandboxImage})
}

// StartContainerdIn is StartContainerd with a configuration of the
// caller's (cfg.Dir from NodeDir).
func StartContainerdIn(t testing.TB, binDir string, ccfg node.ContainerdConfig) *Containerd {
	t.Helper()
	dir := ccfg.Dir
	cfg, err := node.WriteContainerdConfig(ccfg)
	require.NoError(t, err)
	c := &Containerd{Containerd: cfg, CtrBin: filepath.Join(binDir, "ctr"), log: filepath.Join(dir, "containerd.log")}

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
		// Mounts go even when the test failed (the kubelet's bind mount of
		// its root onto itself would otherwise outlive the run); the files
		// stay for a look.
		unmountUnder(t, dir)
		if t.Failed() {
			t.Logf("containerd log (%s):\n%s", c.log, c.logTail())
			t.Logf("left %s in place for a look (mounts detached)", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the node's directory (a mount left behind?): %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), containerdReadyTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.Ctr(ctx, "version"); err == nil {
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
