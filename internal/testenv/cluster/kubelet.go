//go:build cluster

package cluster

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

// The kubelet starts within seconds on a loaded machine.
const (
	kubeletReadyTimeout = 90 * time.Second
	kubeletStopTimeout  = 30 * time.Second
)

// StartKubelet starts a kubelet against c and waits for its /healthz; it
// is stopped before c (cleanups run last-registered first). edit, when not
// nil, changes the configuration before it is written (an apiserver to
// join, cluster DNS); without one the kubelet runs standalone.
func StartKubelet(t testing.TB, bin string, c *Containerd, edit func(*node.KubeletConfig)) node.Kubelet {
	t.Helper()
	dir := filepath.Join(filepath.Dir(c.Config), "kubelet")
	healthz := FreePort(t)
	kcfg := node.KubeletConfig{Dir: dir, ContainerdAddress: c.Address, Port: FreePort(t), HealthzPort: healthz}
	if edit != nil {
		edit(&kcfg)
	}
	k, err := node.WriteKubeletConfig(kcfg)
	require.NoError(t, err)
	logPath := filepath.Join(dir, "kubelet.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	tail := func() string { return LogTail(logPath, 6000) }
	// Registered before the kubelet's stop, so it runs after it: the
	// kubelet creates KUBE-FIREWALL, KUBE-IPTABLES-HINT and
	// KUBE-KUBELET-CANARY (iptables and ip6tables) and never removes them.
	t.Cleanup(func() {
		if swept := SweepRules(t); len(swept) > 0 {
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
