//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// namespace receives the pool objects and their Jobs; KEDA runs in its own.
const (
	namespace     = "mpegflow"
	kedaNamespace = "keda"
)

var scaledJobGVR = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs"}

// rig is the whole system under test.
type rig struct {
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	svc     *services
	api     *client.Client
	mem     *memorySampler
	node    *proc
	keda    *testenv.KEDA
	clips   string // directory of generated source clips
	started time.Duration
}

// startRig builds the binaries, then starts every piece, waits until the
// operator has created the shared pool's ScaledJob, and starts KEDA. It
// records how long the rig took from its first process to KEDA's readyz.
func startRig(t *testing.T) *rig {
	t.Helper()
	return startRigWith(t, true)
}

// startRigWith starts the rig, with or without KEDA (without, nothing
// turns queued jobs into Jobs: the test makes them itself).
func startRigWith(t *testing.T, withKEDA bool) *rig {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe", "go", "test"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not on PATH: run scripts/deps.sh (make deps)", b)
		}
	}
	binDir := buildBinaries(t)
	db := dbInfo{
		url:   testenv.DatabaseURL(t),
		admin: os.Getenv("MPEGFLOW_TEST_DATABASE_URL"),
		redis: testenv.PrivateRedis(t),
		s3:    testenv.S3(t),
	}
	r := &rig{mem: startMemorySampler(500 * time.Millisecond)}
	t.Cleanup(r.mem.Stop)

	begin := time.Now()
	cp := startControlPlane(t)
	var err error
	if r.cs, err = kubernetes.NewForConfig(cp.cfg); err != nil {
		t.Fatal(err)
	}
	if r.dyn, err = dynamic.NewForConfig(cp.cfg); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{namespace, kedaNamespace} {
		if _, err := r.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	r.node, _ = startProcessNode(t, r.cs, cp.kubeconfig, filepath.Join(binDir, "processnode"), binDir)
	r.svc = startServices(t, r.cs, cp.kubeconfig, filepath.Join(binDir, "mpegflow"), namespace, db)
	if r.api, err = client.New(r.svc.api, r.svc.apiKey, client.Config{}); err != nil {
		t.Fatalf("REST client: %v", err)
	}
	r.waitScaledJob(t, "default", time.Minute)
	r.waitOperatorReady(t, time.Minute)
	if withKEDA {
		r.keda = testenv.StartKEDA(t, cp.cfg, testenv.KEDAOptions{Namespace: kedaNamespace, WatchNamespace: namespace})
	}
	r.started = time.Since(begin)
	t.Logf("rig ready in %s", r.started.Round(100*time.Millisecond))
	r.clips = t.TempDir()
	return r
}

// scaledJobName is the operator's name for a pool's live ScaledJob.
func scaledJobName(pool string) string { return "mpegflow-pool-" + pool }

// waitScaledJob waits until the operator has applied the pool's ScaledJob.
func (r *rig) waitScaledJob(t *testing.T, pool string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		r.svc.operator.running(t)
		_, err := r.dyn.Resource(scaledJobGVR).Namespace(namespace).Get(ctx, scaledJobName(pool), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}, "wait for ScaledJob "+scaledJobName(pool))
	if err != nil {
		t.Fatal(err)
	}
}

// waitOperatorReady waits until the operator's /readyz answers 200 (it
// leads and has reconciled), then checks its metrics say so.
func (r *rig) waitOperatorReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	get := func(url string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	last := ""
	err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		r.svc.operator.running(t)
		code, body, err := get(r.svc.operatorHealth + "/readyz")
		if err != nil {
			return false, nil //nolint:nilerr // not answering yet: poll again until ctx expires
		}
		last = body
		return code == http.StatusOK, nil
	}, "wait for the operator's /readyz")
	if err != nil {
		t.Fatalf("%v (last answer: %s)", err, last)
	}
	code, metrics, err := get(r.svc.operatorMetrics + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("operator metrics: %d %v", code, err)
	}
	for _, want := range []string{"mpegflow_operator_is_leader 1", `mpegflow_operator_reconcile_total{result="success"} `} {
		if !strings.Contains(metrics, want) {
			t.Errorf("operator metrics lack %q", want)
		}
	}
}

// alive fails the test when a rig process has died.
func (r *rig) alive(t *testing.T) {
	t.Helper()
	r.node.running(t)
	r.svc.serve.running(t)
	r.svc.operator.running(t)
}

// measure runs one scenario as a subtest and records its wall time and
// the rig's peak memory during it.
func (r *rig) measure(t *testing.T, results *[]result, name string, f func(t *testing.T)) {
	t.Helper()
	r.mem.ResetPeak()
	begin := time.Now()
	ok := t.Run(name, f)
	*results = append(*results, result{name: name, wall: time.Since(begin), peak: r.mem.Peak(), ok: ok})
}

// result is one scenario's figures for docs/benchmarks.md.
type result struct {
	name string
	wall time.Duration
	peak int64
	ok   bool
}

func (res result) String() string {
	status := "pass"
	if !res.ok {
		status = "FAIL"
	}
	return fmt.Sprintf("| %s | %.1f s | %.2f GiB | %s |", res.name, res.wall.Seconds(), float64(res.peak)/(1<<30), status)
}
