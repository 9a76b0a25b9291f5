package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/mpegflow/mpegflow/internal/loopback"
)

// KEDAOperatorEnv names the variable holding the path of KEDA's operator
// binary; `make test` builds it once into ~/.cache/mpegflow/keda/keda-VERSION-static and sets it.
const KEDAOperatorEnv = "KEDA_OPERATOR"

// KEDA timeouts: a cold start on a loaded two-core machine takes a few
// seconds; a clean stop takes well under a second.
const (
	kedaReadyTimeout = 90 * time.Second
	kedaStopTimeout  = 15 * time.Second
	kedaStartTries   = 3
)

// KEDAOptions says how to run KEDA's operator. Only Namespace is required.
type KEDAOptions struct {
	// Namespace must exist: KEDA keeps its cluster objects there
	// (KEDA_CLUSTER_OBJECT_NAMESPACE) and treats it as its own
	// (POD_NAMESPACE).
	Namespace string
	// WatchNamespace is WATCH_NAMESPACE: "" watches every namespace, a
	// comma-separated list restricts KEDA to those. Tests sharing one
	// apiserver run one KEDA each and set it to their own namespace, or two
	// operators would scale the same ScaledJob.
	WatchNamespace string
	// Binary is the keda-operator executable (default $KEDA_OPERATOR).
	Binary string
	// Args are appended to the flags StartKEDA sets (e.g. "--zap-log-level=debug").
	Args []string
	// Env is appended to the environment StartKEDA sets.
	Env []string
}

// KEDA is a running KEDA operator process.
type KEDA struct {
	// Kubeconfig is the file KEDA reads, also usable by other processes of
	// a test rig (kube-controller-manager, a node).
	Kubeconfig string
	// CertDir holds ca.crt, tls.crt and tls.key of KEDA's gRPC metrics
	// service, signed by a CA made for this run.
	CertDir string
	// HealthAddr, MetricsAddr and MetricsServiceAddr are its loopback
	// listeners (probes, Prometheus, gRPC metrics service).
	HealthAddr, MetricsAddr, MetricsServiceAddr string
	// LogFile receives KEDA's stdout and stderr; it is printed into the
	// test log when the test fails.
	LogFile string

	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
	err    error
}

// StartKEDA runs KEDA's own operator (the binary at $KEDA_OPERATOR unless
// opts.Binary is set) against the apiserver of cfg, with leader election
// off, every listener on a free loopback port and a self-signed certificate
// directory, and waits until its readyz probe answers. It is stopped when
// the test ends: register the apiserver's own stop before calling StartKEDA,
// so that KEDA (cleanups run last-in, first-out) stops first. A missing
// binary fails the test; it never skips.
func StartKEDA(t testing.TB, cfg *rest.Config, opts KEDAOptions) *KEDA {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = os.Getenv(KEDAOperatorEnv)
	}
	if bin == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which builds KEDA's operator once into ~/.cache/mpegflow/keda and sets it (or run `make keda` and set %s to the keda-operator it built there)", KEDAOperatorEnv, KEDAOperatorEnv)
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("KEDA operator %s is not an executable file (%v): run `make tools` to build it", bin, err)
	}
	if opts.Namespace == "" {
		t.Fatalf("StartKEDA: KEDAOptions.Namespace is required (an existing namespace for KEDA's own objects)")
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(cfg, kubeconfig); err != nil {
		t.Fatalf("StartKEDA: %v", err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := WriteSelfSignedCerts(certDir, "keda-operator", "keda-operator."+opts.Namespace+".svc"); err != nil {
		t.Fatalf("StartKEDA: %v", err)
	}
	var lastErr error
	for attempt := range kedaStartTries {
		k, err := startKEDA(t, bin, kubeconfig, certDir, filepath.Join(dir, "keda-"+strconv.Itoa(attempt)+".log"), opts)
		if err == nil {
			return k
		}
		lastErr = err
		// A port taken between picking and binding makes KEDA exit: retry
		// with fresh ports. Any other failure repeats and ends up here.
	}
	t.Fatalf("start KEDA's operator (%d attempts): %v", kedaStartTries, lastErr)
	return nil
}

func startKEDA(t testing.TB, bin, kubeconfig, certDir, logFile string, opts KEDAOptions) (*KEDA, error) {
	t.Helper()
	var addrs [3]string
	picked := map[int]bool{} // three ports, none picked twice
	for i := range addrs {
		p, err := loopback.FreePort(func(p int) bool { return picked[p] })
		if err != nil {
			return nil, err
		}
		picked[p] = true
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	k := &KEDA{
		Kubeconfig: kubeconfig, CertDir: certDir, LogFile: logFile,
		HealthAddr: addrs[0], MetricsAddr: addrs[1], MetricsServiceAddr: addrs[2],
		exited: make(chan struct{}),
	}
	logf, err := os.Create(logFile)
	if err != nil {
		return nil, fmt.Errorf("create KEDA log file: %w", err)
	}
	args := append([]string{
		"--leader-elect=false",
		"--health-probe-bind-address=" + k.HealthAddr,
		"--metrics-bind-address=" + k.MetricsAddr,
		"--metrics-service-bind-address=" + k.MetricsServiceAddr,
		"--cert-dir=" + certDir,
		"--ca-dir=" + certDir,
		"--enable-cert-rotation=false",
		"--enable-webhook-patching=false",
		"--enable-apiservice-patching=false",
	}, opts.Args...)
	cmd := exec.Command(bin, args...) //nolint:noctx // Stop ends it gracefully in t.Cleanup; t.Context() would kill it before the cleanups that still need it
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"WATCH_NAMESPACE="+opts.WatchNamespace,
		"KEDA_CLUSTER_OBJECT_NAMESPACE="+opts.Namespace,
		"POD_NAMESPACE="+opts.Namespace,
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	k.cmd = cmd
	go func() {
		k.err = cmd.Wait()
		_ = logf.Close() // the operator has exited; it wrote through its own descriptor
		close(k.exited)
	}()
	if err := k.waitReady(); err != nil {
		_ = k.Stop() // the readiness error is the one to report
		return nil, fmt.Errorf("%w; its log:\n%s", err, k.tail(80))
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("stop KEDA's operator: %v", err)
		}
		if t.Failed() {
			t.Logf("KEDA operator log (%s), last lines:\n%s", logFile, k.tail(200))
		}
	})
	return k, nil
}

// waitReady polls KEDA's readyz probe until it answers 200 and its
// metrics service (the gRPC server its scalers report through) accepts
// connections, KEDA exits, or kedaReadyTimeout passes. The probe can answer
// before the metrics service has bound its port; when that bind fails KEDA
// exits, and the caller starts it again on other ports.
func (k *KEDA) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), kedaReadyTimeout)
	defer cancel()
	url := "http://" + k.HealthAddr + "/readyz"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if k.answers(ctx, url) {
			select {
			case <-k.exited:
				return fmt.Errorf("KEDA's operator exited as it became ready: %w", k.err)
			default:
				return nil
			}
		}
		select {
		case <-k.exited:
			return fmt.Errorf("KEDA's operator exited before it was ready: %w", k.err)
		case <-ctx.Done():
			return fmt.Errorf("KEDA's operator not ready on %s after %s", url, kedaReadyTimeout)
		case <-tick.C:
		}
	}
}

// answers reports whether KEDA's readyz probe at url answers 200 and its
// metrics service accepts a connection.
func (k *KEDA) answers(ctx context.Context, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", k.MetricsServiceAddr)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Exited is closed when the process has ended.
func (k *KEDA) Exited() <-chan struct{} { return k.exited }

// Stop sends SIGTERM, waits for a clean exit, and kills KEDA after
// kedaStopTimeout. It is idempotent and safe to call before the automatic
// cleanup (e.g. to restart KEDA within a test).
func (k *KEDA) Stop() error {
	var err error
	k.once.Do(func() {
		select {
		case <-k.exited:
			return
		default:
		}
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(kedaStopTimeout):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.exited
			err = fmt.Errorf("KEDA's operator ignored SIGTERM for %s and was killed", kedaStopTimeout)
		}
	})
	return err
}

// Log returns everything KEDA has written so far.
func (k *KEDA) Log() string {
	b, _ := os.ReadFile(k.LogFile)
	return string(b)
}

func (k *KEDA) tail(n int) string {
	b, err := os.ReadFile(k.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", k.LogFile, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
