package node

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
)

// KubeletConfig says how one test node's kubelet runs. Dir,
// ContainerdAddress and the ports are required.
type KubeletConfig struct {
	// Dir holds the kubelet's root directory, configuration, static pod
	// manifests, certificates and pod logs. Absolute.
	Dir string
	// ContainerdAddress is the containerd socket the kubelet talks CRI to
	// (Containerd.Address).
	ContainerdAddress string
	// Port and HealthzPort are loopback ports: the kubelet's API and its
	// plain-HTTP /healthz.
	Port, HealthzPort int
	// Kubeconfig, when set, registers the kubelet with that apiserver as
	// node NodeName (default mpegflow-node); without it the kubelet runs
	// standalone, static pods only.
	Kubeconfig, NodeName string
	// ClusterDNS is the cluster DNS Service's ClusterIP that pods with
	// dnsPolicy ClusterFirst use as their nameserver, under ClusterDomain
	// (default cluster.local). Unset: pods get no DNS configuration.
	ClusterDNS    netip.Addr
	ClusterDomain string
}

// Kubelet is the layout WriteKubeletConfig wrote.
type Kubelet struct {
	// Config is the kubelet's --config (a KubeletConfiguration).
	Config string
	// StaticPodDir is where a pod manifest becomes a static pod within a
	// second (fileCheckFrequency).
	StaticPodDir string
	// Args are the kubelet's command line: the settings that are flags
	// only (--kubeconfig among them when the kubelet joins an apiserver).
	Args []string
	// NodeName is the name the kubelet registers under.
	NodeName string
}

func (c KubeletConfig) validate() error {
	var errs []error
	if !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("dir %q must be an absolute path", c.Dir))
	}
	if !filepath.IsAbs(c.ContainerdAddress) {
		errs = append(errs, fmt.Errorf("containerd address %q must be an absolute socket path", c.ContainerdAddress))
	}
	if c.Kubeconfig != "" && !filepath.IsAbs(c.Kubeconfig) {
		errs = append(errs, fmt.Errorf("kubeconfig %q must be an absolute path", c.Kubeconfig))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"port", c.Port}, {"healthz port", c.HealthzPort}} {
		if p.port <= 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is not a port", p.name, p.port))
		}
	}
	return errors.Join(errs...)
}

// WriteKubeletConfig writes the configuration of a kubelet that runs pods
// through containerd on this host (docs/design/0016-cluster-tier.md says
// why each setting), creates its directories and returns its command line.
func WriteKubeletConfig(cfg KubeletConfig) (Kubelet, error) {
	if err := cfg.validate(); err != nil {
		return Kubelet{}, fmt.Errorf("kubelet config: %w", err)
	}
	k := Kubelet{
		Config:       filepath.Join(cfg.Dir, "kubelet.json"),
		StaticPodDir: filepath.Join(cfg.Dir, "manifests"),
		NodeName:     cmp.Or(cfg.NodeName, "mpegflow-node"),
	}
	root := filepath.Join(cfg.Dir, "root")
	certs := filepath.Join(cfg.Dir, "pki")
	logs := filepath.Join(cfg.Dir, "pod-logs")
	for _, d := range []string{k.StaticPodDir, root, certs, logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Kubelet{}, fmt.Errorf("kubelet config: %w", err)
		}
	}
	conf := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		// containerd runs runc with cgroupfs (no systemd here); both must agree.
		"cgroupDriver": "cgroupfs",
		// The host is cgroup v1 (v2 only at /sys/fs/cgroup/unified); the
		// kubelet refuses v1 unless told otherwise (failCgroupV1 defaults to true).
		"failCgroupV1": false,
		// Belt and braces: the kubelet refuses to start when swap is on.
		"failSwapOn": false,
		// The host refuses to lower a process's oom_score_adj; the default
		// -999 for the kubelet itself would only fail and log.
		"oomScoreAdj": 0,
		// A test node on a shared disk: the default hard eviction
		// thresholds (imagefs.available<15%, nodefs.available<10%) taint
		// the node with DiskPressure on a host whose disk is merely well
		// used (this one has 16% free), and then no pod is scheduled.
		"evictionHard": map[string]string{
			"memory.available":  "100Mi",
			"nodefs.available":  "1%",
			"imagefs.available": "1%",
			"nodefs.inodesFree": "1%",
		},
		"containerRuntimeEndpoint": "unix://" + cfg.ContainerdAddress,
		"staticPodPath":            k.StaticPodDir,
		"fileCheckFrequency":       "1s",
		"podLogsDir":               logs,
		"address":                  "127.0.0.1",
		"port":                     cfg.Port,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              cfg.HealthzPort,
		// Loopback only, standalone: anyone on this host may ask. The tier
		// with an apiserver will use webhook authentication instead.
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": true},
			"webhook":   map[string]any{"enabled": false},
		},
		"authorization": map[string]any{"mode": "AlwaysAllow"},
		// Pods get nothing of the host's DNS configuration: with cluster
		// DNS, ClusterFirst pods use it alone; without, they have none.
		"resolvConf": "",
	}
	if cfg.ClusterDNS.IsValid() {
		conf["clusterDNS"] = []string{cfg.ClusterDNS.String()}
		conf["clusterDomain"] = cmp.Or(cfg.ClusterDomain, "cluster.local")
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return Kubelet{}, fmt.Errorf("kubelet config: %w", err)
	}
	if err := os.WriteFile(k.Config, b, 0o600); err != nil {
		return Kubelet{}, fmt.Errorf("kubelet config: %w", err)
	}
	k.Args = []string{
		"--config=" + k.Config,
		"--root-dir=" + root,
		// The default is /var/lib/kubelet/pki whatever --root-dir says.
		"--cert-dir=" + certs,
		"--hostname-override=" + k.NodeName,
		"--v=" + strconv.Itoa(2),
	}
	if cfg.Kubeconfig != "" {
		k.Args = append(k.Args, "--kubeconfig="+cfg.Kubeconfig)
	}
	return k, nil
}
