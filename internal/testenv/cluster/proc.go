//go:build cluster

package cluster

import (
	"crypto/tls"
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
)

// Variables `make test-cluster` sets from what `make node-tools` built.
const (
	RuncEnv          = "MPEGFLOW_NODE_RUNC"
	ContainerdDirEnv = "MPEGFLOW_NODE_CONTAINERD_DIR" // containerd, ctr, containerd-shim-runc-v2
	PauseArchiveEnv  = "MPEGFLOW_NODE_PAUSE_ARCHIVE"
	PauseImageEnv    = "MPEGFLOW_NODE_PAUSE_IMAGE"
	KubeletEnv       = "MPEGFLOW_NODE_KUBELET"
	K8sAssetsEnv     = "KUBEBUILDER_ASSETS" // kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
	// APIServerEnv is the version-stamped kube-apiserver the cluster runs
	// (helm checks a chart's kubeVersion against its /version).
	APIServerEnv = "MPEGFLOW_NODE_APISERVER"
	CorednsEnv   = "MPEGFLOW_NODE_COREDNS"
	NetpolEnv    = "MPEGFLOW_NODE_NETPOL"  // kube-network-policies, patched
	CNIBinEnv    = "MPEGFLOW_NODE_CNI_BIN" // the reference CNI plugins (Debian: /usr/lib/cni)
)

// Need returns the environment variable name, failing the test when it is
// unset.
func Need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `make test-cluster`, which builds the node (make node-tools) and sets it", name)
	}
	return v
}

// FreePort is a loopback TCP port free when asked.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 200 ms until it holds, failing the test with
// what() after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Run runs a command to completion, failing the test when it fails, and
// returns its combined output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// Proc is a long-running process of the cluster, its output in a log file
// shown when the test fails.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	Log    string
	exited chan struct{}
	err    error
	// StopSignal ends it cleanly: SIGTERM unless set (before the test ends).
	StopSignal syscall.Signal
}

// LogTail is the last n bytes of a log file.
func LogTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return lastBytes(string(b), n)
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// StartProc starts bin with its output in logDir/name.log and registers its
// stop (StopSignal, then SIGKILL after 30 s) as a cleanup; it fails the
// test if the process exited on its own before then.
func StartProc(t testing.TB, logDir, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Log: filepath.Join(logDir, name+".log"), exited: make(chan struct{}), StopSignal: syscall.SIGTERM}
	f, err := os.Create(p.Log)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			t.Errorf("%s had exited before the end of the test: %v", name, p.err)
		default:
			_ = p.cmd.Process.Signal(p.StopSignal)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s of %s; killed it", name, p.StopSignal)
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, p.Log, LogTail(p.Log, 5000))
		}
	})
	return p
}

// WaitHTTP polls url (plain HTTP, or HTTPS with a self-signed certificate)
// until it answers 200, failing the test when p exits first or after
// timeout.
func WaitHTTP(t testing.TB, p *Proc, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe of a self-signed test server
	}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered: %v\n%s", p.Name, url, p.err, LogTail(p.Log, 5000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 within %s:\n%s", p.Name, url, timeout, LogTail(p.Log, 5000))
		}
	}
}
