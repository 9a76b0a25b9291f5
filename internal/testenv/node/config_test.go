//go:build cluster

package node_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

func TestWriteContainerdConfigRefuses(t *testing.T) {
	t.Parallel()
	ok := node.ContainerdConfig{Dir: "/tmp/mf-node-x", Runc: "/usr/bin/runc", SandboxImage: "localhost/p:1"}
	for name, tc := range map[string]struct {
		edit func(*node.ContainerdConfig)
		want string
	}{
		"relative dir":    {func(c *node.ContainerdConfig) { c.Dir = "node" }, "absolute"},
		"socket too long": {func(c *node.ContainerdConfig) { c.Dir = "/tmp/" + strings.Repeat("d", 90) }, "too long"},
		"relative runc":   {func(c *node.ContainerdConfig) { c.Runc = "runc" }, "runc path"},
		"no sandbox":      {func(c *node.ContainerdConfig) { c.SandboxImage = "" }, "sandbox image"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.edit(&cfg)
			_, err := node.WriteContainerdConfig(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestWriteKubeletConfigRefuses(t *testing.T) {
	t.Parallel()
	ok := node.KubeletConfig{Dir: "/tmp/mf-node-x/kubelet", ContainerdAddress: "/tmp/mf-node-x/containerd.sock", Port: 10250, HealthzPort: 10248}
	for name, tc := range map[string]struct {
		edit func(*node.KubeletConfig)
		want string
	}{
		"relative dir":     {func(c *node.KubeletConfig) { c.Dir = "kubelet" }, "dir"},
		"relative socket":  {func(c *node.KubeletConfig) { c.ContainerdAddress = "containerd.sock" }, "containerd address"},
		"no port":          {func(c *node.KubeletConfig) { c.Port = 0 }, "port 0"},
		"healthz too high": {func(c *node.KubeletConfig) { c.HealthzPort = 70000 }, "healthz port 70000"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.edit(&cfg)
			_, err := node.WriteKubeletConfig(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
