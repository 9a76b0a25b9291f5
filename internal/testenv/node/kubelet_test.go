//go:build cluster

package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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

const kubeletEnv = "MPEGFLOW_NODE_KUBELET"

// The kubelet starts within seconds; a static pod's sandbox and container
// within a few more on a loaded machine.
const (
	kubeletReadyTimeout = 90 * time.Second
	kubeletStopTimeout  = 30 * time.Second
	staticPodTimeout    = 90 * time.Second
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startKubelet starts a standalone kubelet against c and waits for its
// /healthz; it is stopped before c (cleanups run last-registered first).
// edit, when not nil, changes the configuration before it is written (an
// apiserver to join, cluster DNS).
func startKubelet(t *testing.T, bin string, c *containerd, edit func(*node.KubeletConfig)) node.Kubelet {
	t.Helper()
	dir := filepath.Join(filepath.Dir(c.Config), "kubelet")
	healthz := freePort(t)
	kcfg := node.KubeletConfig{Dir: dir, ContainerdAddress: c.Address, Port: freePort(t), HealthzPort: healthz}
	if edit != nil {
		edit(&kcfg)
	}
	k, err := node.WriteKubeletConfig(kcfg)
	require.NoError(t, err)
	logPath := filepath.Join(dir, "kubelet.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		return string(b)
	}
	// Registered before the kubelet's stop, so it runs after it: the
	// kubelet creates KUBE-FIREWALL, KUBE-IPTABLES-HINT and
	// KUBE-KUBELET-CANARY (iptables and ip6tables) and never removes them.
	t.Cleanup(func() {
		if swept := sweepRules(t); len(swept) > 0 {
			t.Logf("deleted %d packet filter rules and chains the kubelet left", len(swept))
		}
	})
	cmd := exec.Command(bin, k.Args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start kubelet")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(kubeletStopTimeout):
			t.Errorf("kubelet did not stop within %s of SIGTERM; killed it", kubeletStopTimeout)
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			t.Logf("kubelet log (%s):\n%s", logPath, tail())
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", healthz)
	deadline := time.Now().Add(kubeletReadyTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("kubelet exited before it was healthy: %v\n%s", err, tail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubelet not healthy on %s within %s:\n%s", url, kubeletReadyTimeout, tail())
		}
	}
}

// containerOf returns the id of the CRI container named name, or "".
func (c *containerd) containerOf(ctx context.Context, name string) string {
	out, err := c.ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet",
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

// TestKubeletRunsStaticPod runs the kubelet that `make node-tools` built,
// standalone, on containerd + runc with this host's settings: a static pod
// of the pause image gets a sandbox (the pinned local pause image) and a
// running container, and removing the manifest stops it.
func TestKubeletRunsStaticPod(t *testing.T) {
	t.Parallel()
	runc := need(t, runcEnv)
	binDir := need(t, containerdDirEnv)
	archive := need(t, pauseArchiveEnv)
	image := need(t, pauseImageEnv)
	kubelet := need(t, kubeletEnv)
	c := startContainerd(t, binDir, runc, image)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c.importImage(ctx, t, archive, image)
	k := startKubelet(t, kubelet, c, nil)

	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": "pause", "namespace": "default"},
		"spec": map[string]any{
			// No CNI yet: the pod shares the host's network.
			"hostNetwork": true,
			"containers": []map[string]any{{
				"name":            "pause",
				"image":           image,
				"imagePullPolicy": "Never",
			}},
		},
	}
	b, err := json.Marshal(pod)
	require.NoError(t, err)
	manifest := filepath.Join(k.StaticPodDir, "pause.json")
	require.NoError(t, os.WriteFile(manifest, b, 0o600))

	var id string
	eventually(t, staticPodTimeout, func() bool {
		id = c.containerOf(ctx, "pause")
		return id != "" && c.taskStatus(ctx, id) == "RUNNING"
	}, func() string {
		out, _ := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "list")
		return "the static pod's container running; tasks:\n" + out
	})
	sandboxes, err := c.ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet",
		`labels."io.cri-containerd.kind"==sandbox`)
	require.NoError(t, err)
	require.Len(t, strings.Fields(sandboxes), 1, "one pod, one sandbox")
	sandbox := strings.Fields(sandboxes)[0]
	require.Equal(t, "RUNNING", c.taskStatus(ctx, sandbox), "the sandbox runs")
	all, err := c.ctr(ctx, "--namespace", "k8s.io", "containers", "list")
	require.NoError(t, err)
	var sandboxImage string
	for _, line := range strings.Split(all, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == sandbox {
			sandboxImage = f[1]
		}
	}
	require.Equal(t, image, sandboxImage, "the sandbox runs the pinned local pause image")

	require.NoError(t, os.Remove(manifest))
	eventually(t, staticPodTimeout, func() bool {
		out, err := c.ctr(ctx, "--namespace", "k8s.io", "tasks", "list", "--quiet")
		return err == nil && strings.TrimSpace(out) == ""
	}, func() string { return "the container and its sandbox stopped after the manifest was removed" })
}
