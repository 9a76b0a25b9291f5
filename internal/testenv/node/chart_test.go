//go:build cluster

package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// helmEnv is the helm binary `make helm` built (tools/helm);
// mpegflowBinEnv the mpegflow binary `make build` built, for `mpegflow
// admin bootstrap` against the release's database, as an operator of the
// platform would run it.
const (
	helmEnv        = "MPEGFLOW_HELM"
	mpegflowBinEnv = "MPEGFLOW_BIN"
)

// chartDir is charts/mpegflow, from this package's directory.
const chartDir = "../../../charts/mpegflow"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// chartInstalled: KEDA's operator as a pod (installKEDA), then `helm
// install` of charts/mpegflow with charts/mpegflow/ci/cluster-values.yaml,
// Postgres, S3 and a TLS-only, password-protected Redis on the host
// reached at the bridge's address as managed services would be: the
// migration hook Job migrates a fresh database, the API Deployment's two
// replicas become Ready behind their Service, an operator holds the leader
// Lease and renders the shared pool's ScaledJob, which KEDA takes up. It
// returns the release with an API key of an organization on the pro plan
// (set by a platform SuperAdmin through the API), for the scenarios that
// follow; everything is deleted when t ends.
func (r *rig) chartInstalled(t *testing.T) *release {
	started := time.Now()
	helm := cluster.Need(t, helmEnv)
	mpegflow := cluster.Need(t, mpegflowBinEnv)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cs := r.Clientset()

	// KEDA's CRDs: the operator renders ScaledJobs and TriggerAuthentications.
	crds, err := testenv.KEDACRDDir(ctx)
	require.NoError(t, err)
	_, err = envtest.InstallCRDs(r.RESTConfig(), envtest.CRDInstallOptions{Paths: []string{crds}})
	require.NoError(t, err)
	r.installKEDA(ctx, t)
	r.importBuiltImages(ctx, t)

	// The host's services, exposed at an address of the managed
	// services' network (cluster.ExposeOutside): outside the cluster,
	// reached through the node's forwarding path, so under the pods'
	// NetworkPolicy. Redis has a managed one's shape: TLS only, a
	// password, a certificate for the address clients dial.
	adminURL := cluster.Need(t, "MPEGFLOW_TEST_DATABASE_URL")
	admin, err := url.Parse(adminURL)
	require.NoError(t, err)
	pg := r.ExposeOutside(t, admin.Host)
	redisPassword := randomHex(16)
	tlsRedis := testenv.StartTLSRedis(t, testenv.TLSRedisOptions{Password: redisPassword, Hosts: []string{cluster.OutsideAddress().String()}})
	redis := r.ExposeOutside(t, tlsRedis.Addr)
	redisCA, err := os.ReadFile(filepath.Join(tlsRedis.CertDir, "ca.crt"))
	require.NoError(t, err)
	s3cfg := testenv.S3(t) // a fresh bucket
	s3URL, err := url.Parse(s3cfg.Endpoint)
	require.NoError(t, err)
	s3 := r.ExposeOutside(t, s3URL.Host)

	// A fresh, empty database (the hook migrates it) and a login in the
	// operator's read-only role.
	db := "mpegflow_cluster_" + randomHex(6)
	login := "mpegflow_operator_" + randomHex(6)
	conn, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+db)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("connect to drop %s: %v", db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+login); err != nil {
			t.Errorf("drop role %s: %v", login, err)
		}
	})
	// The group role is cluster-wide; migration 0005 creates it when
	// missing, the same way, and grants it this database's privileges.
	_, err = conn.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mpegflow_operator') THEN CREATE ROLE mpegflow_operator NOLOGIN; END IF;
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE ROLE "+login+" LOGIN IN ROLE mpegflow_operator")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	dbURL := *admin
	dbURL.Host, dbURL.Path = pg.String(), "/"+db
	opURL := dbURL
	opURL.User = url.User(login)
	hostDBURL := *admin // the same database as the host reaches it
	hostDBURL.Path = "/" + db

	const ns = "mpegflow"
	r.Namespace(ctx, t, ns)
	redisAddr := redis.String()
	secrets := map[string]map[string]string{
		"mpegflow-postgres":          {"url": dbURL.String()},
		"mpegflow-postgres-operator": {"url": opURL.String()},
		"mpegflow-redis":             {"url": "rediss://:" + redisPassword + "@" + redisAddr + "/0"},
		"mpegflow-keda-redis":        {"password": redisPassword},
		"mpegflow-redis-tls":         {"ca.crt": string(redisCA)},
		"mpegflow-server":            {"secret": randomHex(32)},
		"mpegflow-s3":                {"accessKeyId": s3cfg.AccessKeyID, "secretAccessKey": s3cfg.SecretAccessKey},
	}
	for name, data := range secrets {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	values, err := filepath.Abs(filepath.Join(chartDir, "ci", "cluster-values.yaml"))
	require.NoError(t, err)
	chart, err := filepath.Abs(chartDir)
	require.NoError(t, err)
	args := []string{"install", "mf", chart, "--namespace", ns, "--kubeconfig", r.Kubeconfig(),
		"--values", values,
		"--set", "redis.address=" + redisAddr,
		"--set", "redis.passwordOnly=true",
		"--set", "redis.tls.enabled=true",
		"--set", "redis.tls.existingSecret=mpegflow-redis-tls",
		"--set", "redis.keyPrefix=mfcluster" + randomHex(4),
		"--set", "s3.endpoint=http://" + s3.String(),
		"--set", "s3.bucket=" + s3cfg.Bucket,
		// Object storage is a private address: the encode pods'
		// NetworkPolicy must name it (docs/deploy.md, "Encode-pod egress").
		"--set", "s3.cidrs={" + s3.Addr().String() + "/32}",
		"--set", "s3.ports={" + strconv.Itoa(int(s3.Port())) + "}",
		"--wait", "--timeout", "6m"}
	t0 := time.Now()
	out, err := helmCommand(ctx, t, helm, args...).CombinedOutput()
	if err != nil {
		pods, _ := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		events, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		var ev []string
		for _, e := range events.Items {
			ev = append(ev, fmt.Sprintf("%s %s/%s: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
		}
		t.Fatalf("helm %s: %v\n%s\npods: %s\nevents:\n%s\ncontainer logs:\n%s", strings.Join(args, " "), err, out, podSummary(pods), strings.Join(ev, "\n"), r.podLogs(ns))
	}
	t.Logf("helm install (hook, then --wait) took %s:\n%s", time.Since(t0).Round(time.Millisecond), out)

	// The hook Job migrated the database (it is deleted on success).
	c, err := pgx.Connect(ctx, dbURL.String())
	require.NoError(t, err)
	var version int
	var dirty bool
	require.NoError(t, c.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty))
	_ = c.Close(ctx)
	require.False(t, dirty)
	ups, err := filepath.Glob("../../../migrations/*.up.sql")
	require.NoError(t, err)
	latest := 0
	for _, f := range ups {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		require.NoError(t, err, f)
		latest = max(latest, n)
	}
	require.Equal(t, latest, version, "the migration hook applied every migration, up to the latest")

	// Two API replicas Ready behind their Service.
	// helm's --wait returned with one replica Ready (measured): wait for
	// both.
	t1 := time.Now()
	cluster.Eventually(t, podTimeout, func() bool {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "mf-mpegflow", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	}, func() string {
		pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return "two Ready replicas of mf-mpegflow; pods: " + podSummary(pods) + "\ncontainer logs:\n" + r.podLogs(ns)
	})
	t.Logf("both API replicas Ready %s after helm returned", time.Since(t1).Round(time.Millisecond))
	cluster.Eventually(t, podTimeout, func() bool {
		list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=mf-mpegflow"})
		if err != nil {
			return false
		}
		ready := 0
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == 2
	}, func() string { return "two ready endpoints behind Service mf-mpegflow" })

	// An operator leads.
	cluster.Eventually(t, podTimeout, func() bool {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "mpegflow-operator", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
	}, func() string {
		pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return "the operator's Lease held; pods: " + podSummary(pods)
	})
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "mpegflow-operator", metav1.GetOptions{})
	require.NoError(t, err)
	t.Logf("operator leader: %s", *l.Spec.HolderIdentity)

	rel := &release{rig: r, ns: ns, helm: helm, chart: chart, installArgs: args[3:], s3: s3, pg: pg}
	rel.connect(ctx, t, mpegflow, hostDBURL.String())
	// The shared pool's ScaledJob, rendered by the operator and taken up
	// by KEDA (its Ready condition).
	rel.waitScaledJobReady(ctx, t, "default")
	t.Logf("scenario (KEDA, helm install, migrations, 2 API replicas, operator leader, ScaledJob ready) took %s", time.Since(started).Round(time.Millisecond))
	return rel
}

// podLogs is the end of every container log of namespace ns, read from the
// kubelet's pod log directory (the apiserver cannot fetch logs: the
// kubelet's API listens on loopback only).
func (r *rig) podLogs(ns string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(r.Dir(), "kubelet", "pod-logs", ns+"_*", "*", "*.log"))
	for _, f := range files {
		fmt.Fprintf(&b, "--- %s\n%s\n", strings.TrimPrefix(f, r.Dir()), cluster.LogTail(f, 1500))
	}
	return b.String()
}

// helmCommand is helm with args and homes of its own, so nothing of the
// user's helm configuration or cache takes part.
func helmCommand(ctx context.Context, t *testing.T, helm string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	return cmd
}
