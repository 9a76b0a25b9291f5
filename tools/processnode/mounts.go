package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// mount maps a container mount path to a directory of the pod's own.
type mount struct{ path, dir string }

// mounts are a pod's volume mounts, longest path first so nested mounts
// win.
type mounts []mount

// newMounts creates a directory under dir/volumes for every volume the
// container mounts. Only emptyDir volumes are offered: their content is
// the pod's own, which a directory reproduces; others fail the pod.
func newMounts(dir string, volumes []corev1.Volume, vms []corev1.VolumeMount) (mounts, error) {
	byName := map[string]corev1.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	var ms mounts
	for _, vm := range vms {
		v, ok := byName[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q names no volume", vm.Name)
		}
		if v.EmptyDir == nil {
			return nil, fmt.Errorf("volume %q: only emptyDir volumes are supported on the process node", vm.Name)
		}
		d := filepath.Join(dir, "volumes", vm.Name, vm.SubPath)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create volume %q: %w", vm.Name, err)
		}
		ms = append(ms, mount{path: filepath.Clean(vm.MountPath), dir: d})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod dir: %w", err)
	}
	slices.SortFunc(ms, func(a, b mount) int { return len(b.path) - len(a.path) })
	return ms, nil
}

// rewrite replaces a leading mount path in s (an environment value, an
// argument) by the pod's directory for it.
func (ms mounts) rewrite(s string) string {
	for _, m := range ms {
		if s == m.path {
			return m.dir
		}
		if rest, ok := strings.CutPrefix(s, m.path+"/"); ok {
			return filepath.Join(m.dir, rest)
		}
	}
	return s
}
