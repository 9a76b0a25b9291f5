package chart_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// promOperatorVersion is the Prometheus Operator release whose CRDs
// (example/prometheus-operator-crd) the ServiceMonitors and the
// PrometheusRule are checked against.
// The module is fetched into the module cache at test time, never vendored.
const promOperatorVersion = "v0.85.0"

// TestServerSideDryRun creates every object of every render of the matrix
// on a real kube-apiserver (envtest) with KEDA's and the Prometheus
// Operator's CRDs, as a server-side dry run with strict field validation:
// the API server must accept all of them.
func TestServerSideDryRun(t *testing.T) {
	t.Parallel()
	env := &envtest.Environment{
		BinaryAssetsDirectory: kubeAssets(t),
		CRDDirectoryPaths:     slices.Concat([]string{kedaCRDs(t)}, promOperatorCRDs(t)),
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	require.NoError(t, err, "start envtest")
	t.Cleanup(func() { require.NoError(t, env.Stop()) })
	c, err := client.New(cfg, client.Options{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}))

	for name, values := range matrix(t) {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, values)
			for key, o := range r.objects {
				raw, err := json.Marshal(o)
				require.NoError(t, err)
				u := &unstructured.Unstructured{}
				require.NoError(t, u.UnmarshalJSON(raw), key)
				u.SetNamespace(namespace)
				err = c.Create(ctx, u, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
				require.NoError(t, err, "%s: the API server rejects it", key)
			}
		})
	}
}

// kubeAssets is the directory of kube-apiserver and etcd: KUBEBUILDER_ASSETS
// (`make test` sets it), else the user cache `make k8s-tools` fills. There
// is no skip: without them the test fails and says how to get them.
func kubeAssets(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	found, _ := filepath.Glob(filepath.Join(cache, "mpegflow", "k8s", "*", "kube-apiserver"))
	if len(found) == 0 {
		t.Fatal("no kube-apiserver: run `make k8s-tools` (~/.cache/mpegflow/k8s) or set KUBEBUILDER_ASSETS")
	}
	dir, err := filepath.Abs(filepath.Dir(found[len(found)-1]))
	require.NoError(t, err)
	return dir
}

// promOperatorCRDs are the ServiceMonitor and PrometheusRule CRD files of
// the Prometheus Operator module, downloaded into the module cache once.
func promOperatorCRDs(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/prometheus-operator/prometheus-operator@"+promOperatorVersion).Output()
	require.NoError(t, err, "go mod download the Prometheus Operator module: %s", out)
	var mod struct{ Dir, Error string }
	require.NoError(t, json.Unmarshal(out, &mod))
	require.Empty(t, mod.Error)
	var paths []string
	for _, kind := range []string{"servicemonitors", "prometheusrules"} {
		path := filepath.Join(mod.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_"+kind+".yaml")
		_, err = os.Stat(path)
		require.NoError(t, err, "the %s CRD", kind)
		paths = append(paths, path)
	}
	return paths
}

// kedaCRDs is testenv.KEDACRDDir for a test.
func kedaCRDs(t *testing.T) string {
	t.Helper()
	dir, err := testenv.KEDACRDDir(t.Context())
	require.NoError(t, err)
	return dir
}
