//go:build cluster

package node_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

func TestWriteCNIConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := node.WriteCNIConfig(dir, node.NetworkConfig{
		Bridge: "mfbr0", Subnet: netip.MustParsePrefix("10.244.0.0/24"), IPAMDir: "/tmp/mf-node-x/ipam",
	})
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type, Bridge string
			IsGateway    bool `json:"isGateway"`
			HairpinMode  bool `json:"hairpinMode"`
			IPMasq       bool `json:"ipMasq"`
			IPAM         struct {
				Type    string
				DataDir string `json:"dataDir"`
				Ranges  [][]map[string]string
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &conf))
	require.Equal(t, "1.0.0", conf.CNIVersion)
	require.Len(t, conf.Plugins, 1)
	p := conf.Plugins[0]
	require.Equal(t, "bridge", p.Type)
	require.Equal(t, "mfbr0", p.Bridge)
	require.True(t, p.IsGateway)
	require.True(t, p.HairpinMode)
	require.False(t, p.IPMasq)
	require.Equal(t, "host-local", p.IPAM.Type)
	require.Equal(t, "/tmp/mf-node-x/ipam", p.IPAM.DataDir)
	require.Equal(t, [][]map[string]string{{{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}}}, p.IPAM.Ranges)
}

func TestWriteCNIConfigRefuses(t *testing.T) {
	t.Parallel()
	ok := node.NetworkConfig{Bridge: "mfbr0", Subnet: netip.MustParsePrefix("10.244.0.0/24"), IPAMDir: "/tmp/ipam"}
	for name, tc := range map[string]struct {
		edit func(*node.NetworkConfig)
		want string
	}{
		"long bridge name": {func(c *node.NetworkConfig) { c.Bridge = "a-bridge-name-too-long" }, "bridge name"},
		"no subnet":        {func(c *node.NetworkConfig) { c.Subnet = netip.Prefix{} }, "subnet"},
		"IPv6 subnet":      {func(c *node.NetworkConfig) { c.Subnet = netip.MustParsePrefix("fd00::/64") }, "IPv4"},
		"relative IPAM":    {func(c *node.NetworkConfig) { c.IPAMDir = "ipam" }, "IPAM dir"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.edit(&cfg)
			_, err := node.WriteCNIConfig(t.TempDir(), cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestWriteKubeProxyConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args, err := node.WriteKubeProxyConfig(node.KubeProxyConfig{
		Dir: dir, Kubeconfig: "/tmp/kubeconfig", NodeName: "n1",
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), HealthzPort: 10256, MetricsPort: 10249,
	})
	require.NoError(t, err)
	require.Contains(t, args, "--config="+filepath.Join(dir, "kube-proxy.json"))
	b, err := os.ReadFile(filepath.Join(dir, "kube-proxy.json"))
	require.NoError(t, err)
	var conf map[string]any
	require.NoError(t, json.Unmarshal(b, &conf))
	require.Equal(t, "iptables", conf["mode"])
	require.Equal(t, "n1", conf["hostnameOverride"])
	require.Equal(t, "10.244.0.0/16", conf["clusterCIDR"])
	require.Equal(t, "127.0.0.1:10256", conf["healthzBindAddress"])
	require.Equal(t, []any{"primary"}, conf["nodePortAddresses"], "no route_localnet on the host")
	require.EqualValues(t, 0, conf["conntrack"].(map[string]any)["maxPerCore"], "the host's conntrack table left alone")

	_, err = node.WriteKubeProxyConfig(node.KubeProxyConfig{Dir: dir})
	require.ErrorContains(t, err, "node name")
}

func TestCorefile(t *testing.T) {
	t.Parallel()
	cfg := node.CorefileConfig{
		Listen: netip.MustParseAddr("10.244.0.1"), Kubeconfig: "/tmp/kubeconfig", Domain: "cluster.local",
		HealthPort: 8080, ReadyPort: 8181,
	}
	s, err := node.Corefile(cfg)
	require.NoError(t, err)
	for _, want := range []string{"bind 10.244.0.1", "kubernetes cluster.local in-addr.arpa ip6.arpa {", "kubeconfig /tmp/kubeconfig", "ready 127.0.0.1:8181", "health 127.0.0.1:8080"} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "forward", "no upstream resolver")
	cfg.Kubeconfig = "/tmp/a b"
	_, err = node.Corefile(cfg)
	require.ErrorContains(t, err, "Corefile cannot carry")
}

// TestCorefilePluginsAreBuilt: the cluster tier's CoreDNS is built with only
// the plugins tools/node/coredns/main.go imports, so every directive the
// Corefile names must be one of them (CoreDNS refuses a Corefile with a
// plugin it was built without), and none is built that the Corefile does not
// use.
func TestCorefilePluginsAreBuilt(t *testing.T) {
	t.Parallel()
	s, err := node.Corefile(node.CorefileConfig{
		Listen: netip.MustParseAddr("10.244.0.1"), Kubeconfig: "/tmp/kubeconfig", Domain: "cluster.local",
		HealthPort: 8080, ReadyPort: 8181,
	})
	require.NoError(t, err)
	var directives []string
	depth := 0
	for _, line := range strings.Split(s, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && depth == 1 && fields[0] != "}" {
			directives = append(directives, fields[0])
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	require.NotEmpty(t, directives)

	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "..", "tools", "node", "coredns", "main.go"), nil, parser.ImportsOnly)
	require.NoError(t, err)
	var built []string
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		require.NoError(t, err)
		if plugin, ok := strings.CutPrefix(path, "github.com/coredns/coredns/plugin/"); ok {
			built = append(built, plugin)
		}
	}
	require.ElementsMatch(t, directives, built)
}

func TestWriteKubeletConfigJoins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := node.WriteKubeletConfig(node.KubeletConfig{
		Dir: dir, ContainerdAddress: "/tmp/c.sock", Port: 10250, HealthzPort: 10248,
		Kubeconfig: "/tmp/kubeconfig", ClusterDNS: netip.MustParseAddr("10.0.0.10"),
	})
	require.NoError(t, err)
	require.Contains(t, k.Args, "--kubeconfig=/tmp/kubeconfig")
	require.Contains(t, k.Args, "--hostname-override=mpegflow-node")
	require.Equal(t, "mpegflow-node", k.NodeName)
	b, err := os.ReadFile(k.Config)
	require.NoError(t, err)
	var conf map[string]any
	require.NoError(t, json.Unmarshal(b, &conf))
	require.Equal(t, []any{"10.0.0.10"}, conf["clusterDNS"])
	require.Equal(t, "cluster.local", conf["clusterDomain"])
	require.Equal(t, "", conf["resolvConf"], "nothing of the host's DNS configuration")
}
