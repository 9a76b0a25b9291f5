//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// Rig timings shorter than production so scenarios finish in seconds; each
// is a documented configuration knob of serve or the operator.
const (
	// pollingInterval is the shared pool's KEDA polling interval.
	pollingInterval = 2
	// lease and recoveryPeriod bound how long a kill -9'd encode waits
	// before Stale Job Recovery requeues it.
	lease          = "10s"
	recoveryPeriod = "2s"
	operatorPeriod = "5s"
)

// buildBinaries builds mpegflow and the process node into a fresh
// directory, which is returned (it goes first on the node's PATH).
func buildBinaries(t *testing.T) (binDir string) {
	t.Helper()
	binDir = t.TempDir()
	root := repoRoot(t)
	for _, b := range []struct{ dir, pkg, out string }{
		{root, "./cmd/mpegflow", "mpegflow"},
		{filepath.Join(root, "tools", "processnode"), ".", "processnode"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}
	return binDir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// services are the product's own processes and what they use.
type services struct {
	api         string // REST base URL
	coordinator string
	apiKey      string
	s3          objstore.Config
	redis       *redis.Client
	serve       *proc
	operator    *proc
	// operatorHealth and operatorMetrics are the operator's probe and
	// metrics base URLs.
	operatorHealth, operatorMetrics string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startServices prepares Postgres (a fresh migrated database and the
// operator's read-only login), a private Redis with KEDA's restricted user,
// a bucket, then runs `mpegflow serve` and `mpegflow operator` with the
// environment the chart gives them, except that addresses are loopback
// ones (the pods share the host's network).
func startServices(t *testing.T, cs kubernetes.Interface, kubeconfig, mpegflow, namespace string, db dbInfo) *services {
	t.Helper()
	ctx := t.Context()
	s := &services{s3: db.s3, redis: db.redis}
	redisAddr := db.redis.Options().Addr

	// KEDA polls with a user of its own that may only read list lengths,
	// as the chart's documentation asks of operators.
	kedaPassword := randomHex(16)
	if err := db.redis.Do(ctx, "ACL", "SETUSER", "keda", "on", ">"+kedaPassword, "resetkeys", "~*", "-@all", "+eval", "+type", "+llen", "+ping", "+hello").Err(); err != nil {
		t.Fatalf("create KEDA's Redis user: %v", err)
	}
	_, err := cs.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "mpegflow-keda-redis"},
		StringData: map[string]string{"username": "keda", "password": kedaPassword},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the KEDA Redis secret: %v", err)
	}

	httpPort, grpcPort, metricsPort := freePort(t), freePort(t), freePort(t)
	s.api = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	s.coordinator = fmt.Sprintf("127.0.0.1:%d", grpcPort)
	secret := randomHex(32)
	// The end-to-end tests are not about the platform policy: every plan
	// may have the dedicated pools they create (docs/design/0018).
	policy, err := json.Marshal(apiv1.UnrestrictedPlatformPolicy())
	if err != nil {
		t.Fatalf("encode the platform policy: %v", err)
	}
	common := []string{
		"DATABASE_URL=" + db.url,
		"REDIS_URL=redis://" + redisAddr + "/0",
		"REDIS_KEY_PREFIX=mpegflow",
		"MPEGFLOW_SERVER_SECRET=" + secret,
		"S3_BUCKET=" + db.s3.Bucket,
		"S3_ENDPOINT=" + db.s3.Endpoint,
		"S3_REGION=" + db.s3.Region,
		"S3_ACCESS_KEY_ID=" + db.s3.AccessKeyID,
		"S3_SECRET_ACCESS_KEY=" + db.s3.SecretAccessKey,
		"S3_FORCE_PATH_STYLE=true",
	}
	s.serve = startProc(t, "mpegflow-serve", mpegflow, []string{"serve"}, append(common,
		"HTTP_ADDR=127.0.0.1:"+strconv.Itoa(httpPort),
		"GRPC_ADDR="+s.coordinator,
		"METRICS_ADDR=127.0.0.1:"+strconv.Itoa(metricsPort),
		"MPEGFLOW_LEASE="+lease,
		"MPEGFLOW_STALE_JOB_RECOVERY_PERIOD="+recoveryPeriod,
		"MPEGFLOW_DELAYED_PROMOTE_PERIOD=1s",
		"MPEGFLOW_RETRY_BACKOFF_BASE=1s",
		"MPEGFLOW_RETRY_BACKOFF_MAX=2s",
		"MPEGFLOW_PLATFORM_POLICY="+string(policy),
	))
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = poll(waitCtx, 200*time.Millisecond, func() (bool, error) {
		s.serve.running(t)
		resp, err := http.Get(s.api + "/ready")
		if err != nil {
			return false, nil //nolint:nilerr // not answering yet: poll again until ctx expires
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}, "wait for mpegflow serve /ready")
	if err != nil {
		t.Fatal(err)
	}

	defaultPool, _ := json.Marshal(map[string]any{
		"name": "Shared", "accelerator": "cpu", "min_replicas": 0, "max_replicas": 10,
		"polling_interval_seconds": pollingInterval, "target_queue_length": 1, "backfill_max_replicas": 0,
	})
	healthPort, opMetricsPort := freePort(t), freePort(t)
	s.operatorHealth = fmt.Sprintf("http://127.0.0.1:%d", healthPort)
	s.operatorMetrics = fmt.Sprintf("http://127.0.0.1:%d", opMetricsPort)
	s.operator = startProc(t, "mpegflow-operator", mpegflow, []string{"operator"}, []string{
		"KUBECONFIG=" + kubeconfig,
		"MPEGFLOW_OPERATOR_DATABASE_URL=" + testenv.OperatorLogin(t, db.admin, db.url),
		"MPEGFLOW_OPERATOR_NAMESPACE=" + namespace,
		"MPEGFLOW_ENCODER_IMAGE=mpegflow-encoder:e2e",
		// Test-only: the chart points pods at the coordinator Service; on
		// the process node they share the host's loopback.
		"MPEGFLOW_OPERATOR_COORDINATOR=" + s.coordinator,
		"MPEGFLOW_OPERATOR_REDIS_ADDRESS=" + redisAddr,
		"MPEGFLOW_OPERATOR_REDIS_DATABASE=0",
		"MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET=mpegflow-keda-redis",
		"REDIS_KEY_PREFIX=mpegflow",
		"MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS=127.0.0.1/32",
		"MPEGFLOW_OPERATOR_DEFAULT_POOL=" + string(defaultPool),
		"MPEGFLOW_OPERATOR_PERIOD=" + operatorPeriod,
		"MPEGFLOW_SERVER_SECRET=" + secret,
		"POD_NAME=mpegflow-operator-e2e",
		"MPEGFLOW_OPERATOR_HEALTH_ADDR=127.0.0.1:" + strconv.Itoa(healthPort),
		"MPEGFLOW_OPERATOR_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(opMetricsPort),
	})

	boot := exec.CommandContext(ctx, mpegflow, "admin", "bootstrap", "--org", "e2e", "--email", "ops@e2e.example")
	boot.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + db.url}
	out, err := boot.CombinedOutput()
	if err != nil {
		t.Fatalf("mpegflow admin bootstrap: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`api key \(shown once, store it now\): (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("mpegflow admin bootstrap printed no API key:\n%s", out)
	}
	s.apiKey = string(m[1])
	return s
}

// dbInfo is the per-run slice of the shared services.
type dbInfo struct {
	url   string // the product's database
	admin string // MPEGFLOW_TEST_DATABASE_URL, to create the operator login
	redis *redis.Client
	s3    objstore.Config
}
