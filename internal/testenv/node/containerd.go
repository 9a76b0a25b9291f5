package node

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// maxSocketPath is the longest path a unix socket may have on Linux
// (sun_path is 108 bytes with its terminating NUL).
const maxSocketPath = 107

// ContainerdConfig says where one test node's containerd keeps its files
// and what it runs. Dir, Runc and SandboxImage are required.
type ContainerdConfig struct {
	// Dir holds everything of this containerd: its configuration, root,
	// state and sockets, so that a node is one directory to delete and two
	// nodes on one host share nothing. It must be absolute and short enough
	// for Dir/containerd.sock to be a unix socket path (t.TempDir() names
	// are often too long: use os.MkdirTemp("", ...)).
	Dir string
	// Runc is the absolute path of the runc binary that the CRI runtime
	// "runc" runs (its BinaryName): the one `make node-tools` built, never
	// whatever runc is on PATH.
	Runc string
	// SandboxImage is the image CRI starts every pod sandbox from (the
	// pinned "sandbox" image): the local pause image, which must be imported
	// into the k8s.io namespace before the first pod, since no registry is
	// reachable to pull it.
	SandboxImage string
	// CNIBinDirs and CNIConfDir are where CRI looks for CNI plugins and
	// network configuration. Default: Dir/cni/bin and Dir/cni/net.d, empty,
	// which is enough for host-network pods.
	CNIBinDirs []string
	CNIConfDir string
}

// Containerd is the layout WriteContainerdConfig wrote.
type Containerd struct {
	// Config is containerd's --config.
	Config string
	// Address is the gRPC socket: ctr's --address, and the kubelet's
	// container runtime endpoint as unix://Address.
	Address string
	// Root and State are containerd's persistent and runtime directories.
	Root, State string
}

func (c ContainerdConfig) validate() error {
	var errs []error
	if !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("dir %q must be an absolute path", c.Dir))
	} else if sock := filepath.Join(c.Dir, "containerd.sock.ttrpc"); len(sock) > maxSocketPath {
		errs = append(errs, fmt.Errorf("dir %q is too long for containerd's sockets (%s is %d bytes, the limit is %d): use a shorter temporary directory", c.Dir, sock, len(sock), maxSocketPath))
	}
	if !filepath.IsAbs(c.Runc) {
		errs = append(errs, fmt.Errorf("runc path %q must be an absolute path (run `make node-tools`)", c.Runc))
	}
	if c.SandboxImage == "" {
		errs = append(errs, errors.New("a sandbox image is required (the local pause image: `make pause-image`)"))
	}
	return errors.Join(errs...)
}

// WriteContainerdConfig writes the configuration of a containerd that runs
// CRI pods with runc on this host (docs/design/0016-cluster-tier.md says
// why each setting): cgroupfs, an OOM score adjustment never below
// containerd's own, the local pause image as the sandbox, and every path
// under cfg.Dir. It creates the directories and returns where things are.
func WriteContainerdConfig(cfg ContainerdConfig) (Containerd, error) {
	if err := cfg.validate(); err != nil {
		return Containerd{}, fmt.Errorf("containerd config: %w", err)
	}
	if len(cfg.CNIBinDirs) == 0 {
		cfg.CNIBinDirs = []string{filepath.Join(cfg.Dir, "cni", "bin")}
	}
	cfg.CNIConfDir = cmp.Or(cfg.CNIConfDir, filepath.Join(cfg.Dir, "cni", "net.d"))
	c := Containerd{
		Config:  filepath.Join(cfg.Dir, "containerd.toml"),
		Address: filepath.Join(cfg.Dir, "containerd.sock"),
		Root:    filepath.Join(cfg.Dir, "root"),
		State:   filepath.Join(cfg.Dir, "state"),
	}
	dirs := append([]string{c.Root, c.State, cfg.CNIConfDir}, cfg.CNIBinDirs...)
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Containerd{}, fmt.Errorf("containerd config: %w", err)
		}
	}
	var buf bytes.Buffer
	err := containerdTemplate.Execute(&buf, map[string]any{
		"Root":         c.Root,
		"State":        c.State,
		"Address":      c.Address,
		"TTRPCAddress": c.Address + ".ttrpc",
		"Opt":          filepath.Join(cfg.Dir, "opt"),
		"Runc":         cfg.Runc,
		"SandboxImage": cfg.SandboxImage,
		"CNIBinDirs":   cfg.CNIBinDirs,
		"CNIConfDir":   cfg.CNIConfDir,
	})
	if err != nil {
		return Containerd{}, fmt.Errorf("containerd config: render: %w", err)
	}
	if err := os.WriteFile(c.Config, buf.Bytes(), 0o600); err != nil {
		return Containerd{}, fmt.Errorf("containerd config: %w", err)
	}
	return c, nil
}

// tomlValue writes a string or a list of strings as TOML. A JSON string is
// a valid TOML basic string (the same escapes, \uXXXX included), and a JSON
// array of strings a valid TOML array.
func tomlValue(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// containerdTemplate is containerd v2.4's configuration (version 4: an
// older version is migrated on every start, with a warning). The plugin
// names and keys are those of `containerd config default` at v2.4.2.
var containerdTemplate = template.Must(template.New("containerd.toml").Funcs(template.FuncMap{"toml": tomlValue}).Parse(`# One test node's containerd, written by internal/testenv/node
# (docs/design/0016-cluster-tier.md).
version = 4
root = {{toml .Root}}
state = {{toml .State}}
# No drop-in files (such as /etc/containerd/conf.d): this node is this file.
imports = []

# Version 4 keeps the servers' addresses in their plugins; each defaults to a
# host-wide path under /run/containerd.
[plugins."io.containerd.server.v1.grpc"]
  address = {{toml .Address}}

[plugins."io.containerd.server.v1.ttrpc"]
  address = {{toml .TTRPCAddress}}

[plugins."io.containerd.internal.v1.opt"]
  path = {{toml .Opt}}

# NRI's socket is host-wide (/var/run/nri/nri.sock); the tier uses no NRI plugin.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = {{toml .SandboxImage}}

[plugins."io.containerd.cri.v1.runtime"]
  # The host refuses to lower a process's oom_score_adj; the kubelet asks for
  # -998 for sandboxes, so clamp to containerd's own instead of failing.
  restrict_oom_score_adj = true
  # Network namespaces under state, not the host-wide /var/run/netns.
  netns_mounts_under_state_dir = true

  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = {{toml .Runc}}
        # cgroupfs: the host has no systemd to delegate cgroups, and the
        # kubelet is configured with cgroupDriver: cgroupfs to match.
        SystemdCgroup = false

  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = {{toml .CNIBinDirs}}
    conf_dir = {{toml .CNIConfDir}}
`))
