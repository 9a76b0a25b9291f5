//go:build cluster

package node_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// A static pod's sandbox and container start within seconds on a loaded
// machine.
const staticPodTimeout = 90 * time.Second

// TestKubeletRunsStaticPod runs the kubelet that `make node-tools` built,
// standalone, on containerd + runc with this host's settings: a static pod
// of the pause image gets a sandbox (the pinned local pause image) and a
// running container, and removing the manifest stops it.
func TestKubeletRunsStaticPod(t *testing.T) {
	t.Parallel()
	runc := cluster.Need(t, cluster.RuncEnv)
	binDir := cluster.Need(t, cluster.ContainerdDirEnv)
	archive := cluster.Need(t, cluster.PauseArchiveEnv)
	image := cluster.Need(t, cluster.PauseImageEnv)
	kubelet := cluster.Need(t, cluster.KubeletEnv)
	c := cluster.StartContainerd(t, binDir, runc, image)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c.ImportImage(ctx, t, archive, image)
	k := cluster.StartKubelet(t, kubelet, c, nil)

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
	cluster.Eventually(t, staticPodTimeout, func() bool {
		id = c.ContainerOf(ctx, "pause")
		return id != "" && c.TaskStatus(ctx, id) == "RUNNING"
	}, func() string {
		out, _ := c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "list")
		return "the static pod's container running; tasks:\n" + out
	})
	sandboxes, err := c.Ctr(ctx, "--namespace", "k8s.io", "containers", "list", "--quiet",
		`labels."io.cri-containerd.kind"==sandbox`)
	require.NoError(t, err)
	require.Len(t, strings.Fields(sandboxes), 1, "one pod, one sandbox")
	sandbox := strings.Fields(sandboxes)[0]
	require.Equal(t, "RUNNING", c.TaskStatus(ctx, sandbox), "the sandbox runs")
	all, err := c.Ctr(ctx, "--namespace", "k8s.io", "containers", "list")
	require.NoError(t, err)
	var sandboxImage string
	for _, line := range strings.Split(all, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == sandbox {
			sandboxImage = f[1]
		}
	}
	require.Equal(t, image, sandboxImage, "the sandbox runs the pinned local pause image")

	require.NoError(t, os.Remove(manifest))
	cluster.Eventually(t, staticPodTimeout, func() bool {
		out, err := c.Ctr(ctx, "--namespace", "k8s.io", "tasks", "list", "--quiet")
		return err == nil && strings.TrimSpace(out) == ""
	}, func() string { return "the container and its sandbox stopped after the manifest was removed" })
}
