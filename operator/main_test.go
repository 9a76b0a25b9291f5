package operator

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// testREST is the envtest kube-apiserver every integration test of the
// package shares; each test works in its own namespace.
var testREST *rest.Config

// TestMain starts a real kube-apiserver and etcd (envtest) with KEDA's CRDs
// read from the KEDA module, for the whole package. The binaries come from
// KUBEBUILDER_ASSETS, which `make test` builds and sets; without them the
// package fails, it never skips.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "operator tests: KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into ~/.cache/mpegflow/k8s and sets it")
		return 1
	}
	crds, err := testenv.KEDACRDDir(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator tests:", err)
		return 1
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator tests: start envtest:", err)
		return 1
	}
	testREST = cfg
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "operator tests: stop envtest:", err)
	}
	if code == 0 {
		// Nothing a test started (informers, leader election, KEDA's
		// process watchers) may outlive it.
		if err := goleak.Find(testenv.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "operator tests: goroutines left running:", err)
			return 1
		}
	}
	return code
}
