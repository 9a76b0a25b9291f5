//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/mpegflow/mpegflow/internal/loopback"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// controllers are the kube-controller-manager controllers the path needs:
// Jobs make pods, the garbage collector and TTL clean them up, and
// node-lifecycle lifts the not-ready taint the apiserver puts on a new
// node (without it no pod is ever scheduled).
const controllers = "job-controller,garbage-collector-controller,ttl-after-finished-controller,node-lifecycle-controller"

// controlPlane is etcd and kube-apiserver (envtest, with KEDA's CRDs),
// kube-controller-manager and kube-scheduler.
type controlPlane struct {
	cfg        *rest.Config
	kubeconfig string
}

// assetsDir is KUBEBUILDER_ASSETS, which must also hold
// kube-controller-manager and kube-scheduler (`make k8s-e2e-tools`).
func assetsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		t.Fatalf("KUBEBUILDER_ASSETS is not set: run `make test-e2e`, which builds the control plane into ~/.cache/mpegflow/k8s and sets it")
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s is missing from KUBEBUILDER_ASSETS (%v): run `make k8s-e2e-tools`", b, err)
		}
	}
	return dir
}

// startControlPlane starts the four processes and waits until the
// controller manager and the scheduler answer /healthz. Stops are
// registered so that the controllers stop before the apiserver (which
// otherwise waits about 20 s for their watches to close).
// quietControllerRuntime discards controller-runtime's log, once per
// test binary.
var quietControllerRuntime sync.Once

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	assets := assetsDir(t)
	crds, err := testenv.KEDACRDDir(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// controller-runtime's logger is process-wide and SetLogger is not
	// safe to call from two tests' rigs starting side by side (the race
	// detector failed TestE2E and TestScheduledPause on it): once.
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	env := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true, BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest (etcd, kube-apiserver): %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	kcmPort, schedPort := freePort(t), freePort(t)
	startProc(t, "kube-controller-manager", filepath.Join(assets, "kube-controller-manager"), []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--cert-dir=" + filepath.Join(dir, "kcm-certs"),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kcmPort),
		// A node that stops renewing its lease is marked unready fast.
		"--node-monitor-grace-period=20s",
	}, nil)
	startProc(t, "kube-scheduler", filepath.Join(assets, "kube-scheduler"), []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--cert-dir=" + filepath.Join(dir, "scheduler-certs"),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(schedPort),
	}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for name, port := range map[string]int{"kube-controller-manager": kcmPort, "kube-scheduler": schedPort} {
		if err := waitHealthz(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return &controlPlane{cfg: cfg, kubeconfig: kubeconfig}
}

// waitHealthz polls a self-signed HTTPS health endpoint until it answers 200.
func waitHealthz(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe of a self-signed test server
	}}
	return poll(ctx, 200*time.Millisecond, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil //nolint:nilerr // not answering yet: poll again until ctx expires
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}, "wait for "+url)
}

// poll calls cond every interval until it reports done, returns an error,
// or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error), what string) error {
	for {
		done, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.FreePort(nil)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
