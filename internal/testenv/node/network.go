package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// NetworkConfig is one test node's pod network (docs/design/0016-cluster-tier.md):
// a Linux bridge the node owns, each pod a veth on it with an address from
// Subnet (the CNI bridge and host-local plugins), the bridge holding the
// subnet's first address as every pod's gateway.
type NetworkConfig struct {
	// Bridge is the bridge's interface name: host-wide, so a name of the
	// node's own (at most 15 bytes), never the common cni0.
	Bridge string
	// Subnet is the pods' IPv4 prefix, e.g. 10.244.0.0/24.
	Subnet netip.Prefix
	// IPAMDir is where host-local keeps its leases (default
	// /var/lib/cni/networks): under the node's directory.
	IPAMDir string
}

// Gateway is the bridge's address: the subnet's first host address.
func (c NetworkConfig) Gateway() netip.Addr { return c.Subnet.Masked().Addr().Next() }

func (c NetworkConfig) validate() error {
	var errs []error
	if c.Bridge == "" || len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ \t\n") {
		errs = append(errs, fmt.Errorf("bridge name %q must be 1 to 15 bytes without slashes or spaces", c.Bridge))
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 29 {
		errs = append(errs, fmt.Errorf("subnet %s must be an IPv4 prefix of at most /29", c.Subnet))
	}
	if !filepath.IsAbs(c.IPAMDir) {
		errs = append(errs, fmt.Errorf("IPAM dir %q must be an absolute path", c.IPAMDir))
	}
	return errors.Join(errs...)
}

// WriteCNIConfig writes the node's CNI network list into confDir, which
// containerd's CRI reads (ContainerdConfig.CNIConfDir), and returns its
// path. The plugins are the reference bridge and host-local (Debian's
// containernetworking-plugins, /usr/lib/cni); containerd adds the loopback
// plugin itself.
//
//   - isGateway: the bridge gets the gateway address and pods a default
//     route through it. (The plugin also turns on net.ipv4.ip_forward.)
//   - hairpinMode: a pod reaches itself through a Service's ClusterIP.
//   - ipMasq off: pods only talk to each other and to this host; no
//     masquerade rules the node would have to remove.
func WriteCNIConfig(confDir string, cfg NetworkConfig) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", fmt.Errorf("cni config: %w", err)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "mpegflow-pods",
		"plugins": []map[string]any{{
			"type":        "bridge",
			"bridge":      cfg.Bridge,
			"isGateway":   true,
			"hairpinMode": true,
			"ipMasq":      false,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": cfg.IPAMDir,
				"ranges": [][]map[string]string{{{
					"subnet":  cfg.Subnet.Masked().String(),
					"gateway": cfg.Gateway().String(),
				}}},
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cni config: %w", err)
	}
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return "", fmt.Errorf("cni config: %w", err)
	}
	path := filepath.Join(confDir, "10-mpegflow.conflist")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("cni config: %w", err)
	}
	return path, nil
}

// KubeProxyConfig says how one test node's kube-proxy runs.
type KubeProxyConfig struct {
	// Dir holds its configuration. Absolute.
	Dir string
	// Kubeconfig reaches the apiserver; NodeName is the kubelet's node.
	Kubeconfig, NodeName string
	// ClusterCIDR is the pods' prefix: traffic from outside it to a Service
	// is masqueraded.
	ClusterCIDR netip.Prefix
	// HealthzPort and MetricsPort are loopback ports.
	HealthzPort, MetricsPort int
}

// WriteKubeProxyConfig writes kube-proxy's configuration (iptables mode:
// IPVS is not in this kernel, and the nftables mode needs the nft CLI) and
// returns its command line. It changes no host-wide setting it can avoid:
// conntrack limits and timeouts are left as they are, and NodePorts are
// served on the node's primary address only (the default, every address,
// would set route_localnet on the host).
func WriteKubeProxyConfig(cfg KubeProxyConfig) ([]string, error) {
	var errs []error
	if !filepath.IsAbs(cfg.Dir) || !filepath.IsAbs(cfg.Kubeconfig) {
		errs = append(errs, fmt.Errorf("dir %q and kubeconfig %q must be absolute paths", cfg.Dir, cfg.Kubeconfig))
	}
	if cfg.NodeName == "" {
		errs = append(errs, errors.New("a node name is required"))
	}
	if !cfg.ClusterCIDR.IsValid() {
		errs = append(errs, errors.New("a cluster CIDR is required"))
	}
	if !validPort(cfg.HealthzPort) || !validPort(cfg.MetricsPort) {
		errs = append(errs, fmt.Errorf("ports %d and %d must be ports", cfg.HealthzPort, cfg.MetricsPort))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	conf := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"clientConnection":   map[string]any{"kubeconfig": cfg.Kubeconfig},
		"hostnameOverride":   cfg.NodeName,
		"mode":               "iptables",
		"clusterCIDR":        cfg.ClusterCIDR.String(),
		"detectLocalMode":    "ClusterCIDR",
		"healthzBindAddress": fmt.Sprintf("127.0.0.1:%d", cfg.HealthzPort),
		"metricsBindAddress": fmt.Sprintf("127.0.0.1:%d", cfg.MetricsPort),
		// Lowering oom_score_adj is refused on this host (see the kubelet).
		"oomScoreAdj": 0,
		// 0: leave the host's conntrack table size and timeouts alone.
		"conntrack": map[string]any{
			"maxPerCore":            0,
			"min":                   0,
			"tcpEstablishedTimeout": "0s",
			"tcpCloseWaitTimeout":   "0s",
		},
		"nodePortAddresses": []string{"primary"},
		"iptables": map[string]any{
			"localhostNodePorts": false,
			"syncPeriod":         "30s",
			"minSyncPeriod":      "0s",
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	path := filepath.Join(cfg.Dir, "kube-proxy.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	return []string{"--config=" + path, "--v=2"}, nil
}

// CorefileConfig is the cluster DNS: CoreDNS as a host process of the node,
// answering on the bridge's address (the kube-dns Service's endpoint) from
// the apiserver's Services and EndpointSlices.
type CorefileConfig struct {
	// Listen is the address CoreDNS binds port 53 on: the bridge's gateway.
	Listen netip.Addr
	// Kubeconfig reaches the apiserver (on loopback: CoreDNS is not a pod).
	Kubeconfig string
	// Domain is the cluster domain, "cluster.local".
	Domain string
	// HealthPort and ReadyPort are loopback ports: /health, and /ready,
	// which answers 200 once the kubernetes plugin has synced.
	HealthPort, ReadyPort int
}

// Corefile renders CoreDNS's configuration. There is no forward plugin:
// names outside the cluster domain are not resolved (the tier has no
// upstream resolver to offer, and pods need none).
func Corefile(cfg CorefileConfig) (string, error) {
	var errs []error
	if !cfg.Listen.IsValid() {
		errs = append(errs, errors.New("a listen address is required"))
	}
	if !filepath.IsAbs(cfg.Kubeconfig) {
		errs = append(errs, fmt.Errorf("kubeconfig %q must be an absolute path", cfg.Kubeconfig))
	}
	if cfg.Domain == "" || strings.ContainsAny(cfg.Domain, " {}\n") {
		errs = append(errs, fmt.Errorf("cluster domain %q is not a domain", cfg.Domain))
	}
	if !validPort(cfg.HealthPort) || !validPort(cfg.ReadyPort) {
		errs = append(errs, fmt.Errorf("ports %d and %d must be ports", cfg.HealthPort, cfg.ReadyPort))
	}
	if strings.ContainsAny(cfg.Kubeconfig, " {}\n\"") {
		errs = append(errs, fmt.Errorf("kubeconfig path %q has characters a Corefile cannot carry", cfg.Kubeconfig))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("corefile: %w", err)
	}
	return fmt.Sprintf(`.:53 {
    bind %s
    errors
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`, cfg.Listen, cfg.HealthPort, cfg.ReadyPort, cfg.Domain, cfg.Kubeconfig), nil
}

func validPort(p int) bool { return p > 0 && p <= 65535 }
