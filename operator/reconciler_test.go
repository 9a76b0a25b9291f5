package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// harness is one test's namespace on the shared apiserver, its own migrated
// database, and a reconciler reading through the read-only role.
type harness struct {
	t     *testing.T
	ns    string
	dyn   dynamic.Interface
	cs    kubernetes.Interface
	admin *store.Store // writes pools, as the apiserver would
	rec   *Reconciler
	cfg   Config
	org   store.Bootstrap
	dbURL string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(testREST)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(testREST)
	require.NoError(t, err)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "op-" + hex.EncodeToString(b)
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	dbURL := testenv.DatabaseURL(t)
	adminPool, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(adminPool.Close)
	roURL := testenv.OperatorLogin(t, dbURL, dbURL)
	roPool, err := store.Open(ctx, roURL)
	require.NoError(t, err)
	t.Cleanup(roPool.Close)

	cfg := testConfig()
	cfg.Namespace, cfg.CoordinatorNamespace = ns, ns
	rec, err := NewReconciler(cfg, store.New(roPool), dyn, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	require.NoError(t, err)
	admin := store.New(adminPool)
	org, err := admin.BootstrapOrg(ctx, "acme", "ops@acme.example", "owner")
	require.NoError(t, err)
	// Enterprise, whose default platform policy allows the pools these
	// tests render; policy_test.go moves it.
	enterprise := "enterprise"
	org.Org, err = admin.UpdateOrg(ctx, org.Org.ID, store.OrgPatch{Plan: &enterprise})
	require.NoError(t, err)
	_, err = admin.SeedPlatformPolicy(ctx, testPlatformPolicy())
	require.NoError(t, err)
	return &harness{t: t, ns: ns, dyn: dyn, cs: cs, admin: admin, rec: rec, cfg: cfg, org: org, dbURL: dbURL}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func (h *harness) createPool(set store.PoolSettings) store.Pool {
	h.t.Helper()
	p, err := h.admin.CreatePool(context.Background(), h.org.Org.ID, set)
	require.NoError(h.t, err)
	return p
}

func (h *harness) scope() store.PoolScope { return store.PoolScope{OrgID: h.org.Org.ID} }

func (h *harness) reconcile() {
	h.t.Helper()
	require.NoError(h.t, h.rec.Reconcile(context.Background()))
}

func (h *harness) get(res schema.GroupVersionResource, name string, into runtime.Object) error {
	u, err := h.dyn.Resource(res).Namespace(h.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

func (h *harness) scaledJob(name string) *kedav1alpha1.ScaledJob {
	h.t.Helper()
	var sj kedav1alpha1.ScaledJob
	require.NoError(h.t, h.get(ScaledJobResource, name, &sj))
	return &sj
}

func cpuSettings() store.PoolSettings {
	set := store.DefaultPoolSettings()
	set.Name, set.MinReplicas, set.MaxReplicas, set.BackfillMaxReplicas = "Acme live", 0, 6, 2
	set.CronWindows = []store.CronWindow{{Timezone: "UTC", Start: "0 8 * * *", End: "0 18 * * *", DesiredReplicas: 2}}
	set.Resources = store.Resources{CPURequest: "1", MemoryRequest: "1Gi"}
	return set
}

func TestReconcileCreatesPoolObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.createPool(cpuSettings())
	h.reconcile()

	want, err := Render(h.cfg, p)
	require.NoError(t, err)
	require.Len(t, want.ScaledJobs, 2)
	for _, w := range want.ScaledJobs {
		got := h.scaledJob(w.Name)
		// What the API server stored, after its structural-schema pruning,
		// equals what we rendered, field by field.
		if diff := cmp.Diff(w.Spec, got.Spec); diff != "" {
			t.Errorf("ScaledJob %s spec as stored (-rendered +stored):\n%s", w.Name, diff)
		}
		require.Equal(t, w.Labels, got.Labels)
	}
	var ta kedav1alpha1.TriggerAuthentication
	require.NoError(t, h.get(TriggerAuthenticationResource, TriggerAuthName(p.ID), &ta))
	if diff := cmp.Diff(want.TriggerAuthentication.Spec, ta.Spec); diff != "" {
		t.Errorf("TriggerAuthentication (-rendered +stored):\n%s", diff)
	}
	var np networkingv1.NetworkPolicy
	require.NoError(t, h.get(NetworkPolicyResource, NetworkPolicyName(p.ID), &np))
	if diff := cmp.Diff(want.NetworkPolicy.Spec, np.Spec); diff != "" {
		t.Errorf("NetworkPolicy (-rendered +stored):\n%s", diff)
	}
	var sec corev1.Secret
	require.NoError(t, h.get(SecretResource, SecretName(p.ID), &sec))
	require.Equal(t, want.Secret.Data, sec.Data)
	for _, m := range sec.ManagedFields {
		require.Equal(t, ManagedBy, m.Manager, "one field manager")
	}

	// The shared default pool is reconciled like any other.
	sj := h.scaledJob(ScaledJobName("default", apiv1.LaneLive))
	require.Equal(t, "mpegflow:queue:default", sj.Spec.Triggers[0].Metadata["listName"])

	// A second pass with nothing changed writes nothing.
	before := h.scaledJob(want.ScaledJobs[0].Name).ResourceVersion
	h.reconcile()
	require.Equal(t, before, h.scaledJob(want.ScaledJobs[0].Name).ResourceVersion, "an unchanged pass is a no-op")
}

func TestReconcilePauseResumeTune(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p := h.createPool(cpuSettings())
	h.reconcile()
	name := ScaledJobName(p.ID, apiv1.LaneLive)
	gen := h.scaledJob(name).Generation

	// A Job KEDA would have started for this ScaledJob.
	running := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-abcde", Namespace: h.ns},
		Spec:       *h.scaledJob(name).Spec.JobTargetRef.DeepCopy(),
	}
	running.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err := h.cs.BatchV1().Jobs(h.ns).Create(ctx, running, metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = h.admin.SetPoolStatus(ctx, h.scope(), p.ID, "paused")
	require.NoError(t, err)
	h.reconcile()
	for _, lane := range []string{apiv1.LaneLive, apiv1.LaneBackfill} {
		sj := h.scaledJob(ScaledJobName(p.ID, lane))
		require.Equal(t, "true", sj.Annotations[kedav1alpha1.PausedAnnotation], lane)
	}
	require.Equal(t, gen, h.scaledJob(name).Generation, "pausing must not bump the generation")

	_, err = h.admin.SetPoolStatus(ctx, h.scope(), p.ID, "active")
	require.NoError(t, err)
	h.reconcile()
	sj := h.scaledJob(name)
	require.NotContains(t, sj.Annotations, kedav1alpha1.PausedAnnotation, "resume removes the annotation")
	require.Equal(t, gen, sj.Generation)

	_, err = h.admin.UpdatePool(ctx, h.scope(), p.ID, func(s *store.PoolSettings) error {
		s.MaxReplicas, s.TargetQueueLength, s.PollingIntervalSeconds = 9, 3, 7
		return nil
	})
	require.NoError(t, err)
	h.reconcile()
	sj = h.scaledJob(name)
	require.Equal(t, int32(9), *sj.Spec.MaxReplicaCount)
	require.Equal(t, "3", sj.Spec.Triggers[0].Metadata["listLength"])
	require.Equal(t, int32(7), *sj.Spec.PollingInterval)
	require.Equal(t, "gradual", sj.Spec.Rollout.Strategy, "a spec change keeps running Jobs (KEDA's gradual rollout)")
	require.Greater(t, sj.Generation, gen)
	_, err = h.cs.BatchV1().Jobs(h.ns).Get(ctx, running.Name, metav1.GetOptions{})
	require.NoError(t, err, "the operator never deletes a running Job")
}

func TestReconcileGPUPool(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	set := cpuSettings()
	set.Accelerator = "nvidia"
	set.NodeSelector = map[string]string{"cloud.example/accelerator": "nvidia-l4"}
	set.Tolerations = []store.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}
	gpu := h.createPool(set)
	cpu := h.createPool(cpuSettings())
	h.reconcile()

	spec := h.scaledJob(ScaledJobName(gpu.ID, apiv1.LaneLive)).Spec.JobTargetRef.Template.Spec
	require.Equal(t, "1", ptr.To(spec.Containers[0].Resources.Limits[GPUResource]).String())
	require.Equal(t, map[string]string{"cloud.example/accelerator": "nvidia-l4"}, spec.NodeSelector)
	require.Equal(t, []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}, spec.Tolerations)

	spec = h.scaledJob(ScaledJobName(cpu.ID, apiv1.LaneLive)).Spec.JobTargetRef.Template.Spec
	_, hasGPU := spec.Containers[0].Resources.Limits[GPUResource]
	require.False(t, hasGPU)
	require.Empty(t, spec.NodeSelector)
	require.Empty(t, spec.Tolerations)
}

func TestReconcileRevertsDriftAndPrunes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p := h.createPool(cpuSettings())
	h.reconcile()
	name := ScaledJobName(p.ID, apiv1.LaneLive)

	// Hand edits through another field manager, as kubectl edit would.
	patch := []byte(`{"spec":{"maxReplicaCount":99,"scalingStrategy":{"strategy":"default"}}}`)
	_, err := h.dyn.Resource(ScaledJobResource).Namespace(h.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	_, err = h.dyn.Resource(NetworkPolicyResource).Namespace(h.ns).Patch(ctx, NetworkPolicyName(p.ID), types.MergePatchType,
		[]byte(`{"spec":{"policyTypes":["Egress"]}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	require.NoError(t, h.dyn.Resource(SecretResource).Namespace(h.ns).Delete(ctx, SecretName(p.ID), metav1.DeleteOptions{}))

	h.reconcile()
	sj := h.scaledJob(name)
	require.Equal(t, int32(6), *sj.Spec.MaxReplicaCount, "drift reverted")
	require.Equal(t, "accurate", sj.Spec.ScalingStrategy.Strategy, "drift reverted")
	var np networkingv1.NetworkPolicy
	require.NoError(t, h.get(NetworkPolicyResource, NetworkPolicyName(p.ID), &np))
	require.Equal(t, []networkingv1.PolicyType{"Ingress", "Egress"}, np.Spec.PolicyTypes)
	var sec corev1.Secret
	require.NoError(t, h.get(SecretResource, SecretName(p.ID), &sec), "a deleted Secret is recreated")

	// Dropping the backfill cap removes the backfill ScaledJob only.
	_, err = h.admin.UpdatePool(ctx, h.scope(), p.ID, func(s *store.PoolSettings) error { s.BackfillMaxReplicas = 0; return nil })
	require.NoError(t, err)
	h.reconcile()
	err = h.get(ScaledJobResource, ScaledJobName(p.ID, apiv1.LaneBackfill), &kedav1alpha1.ScaledJob{})
	require.True(t, apierrors.IsNotFound(err), "backfill ScaledJob pruned: %v", err)
	h.scaledJob(name)

	require.NoError(t, h.admin.DeletePool(ctx, h.org.Org.ID, p.ID))
	h.reconcile()
	for _, res := range managedResources {
		list, err := h.dyn.Resource(res).Namespace(h.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelPool + "=" + p.ID})
		require.NoError(t, err)
		require.Empty(t, names(list), "%s of a deleted pool left behind", res.Resource)
	}
	h.scaledJob(ScaledJobName("default", apiv1.LaneLive)) // other pools untouched
}

func names(l *unstructured.UnstructuredList) []string {
	var out []string
	for _, i := range l.Items {
		out = append(out, i.GetName())
	}
	return out
}

func TestReadOnlyRoleCannotWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	conn, err := pgx.Connect(ctx, testenv.OperatorLogin(t, dbURL, dbURL))
	require.NoError(t, err)
	defer conn.Close(ctx)

	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM worker_pools").Scan(&n))
	require.Equal(t, 1, n, "the operator reads worker_pools")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM platform_policy").Scan(&n), "the operator reads the platform policy")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(plan) FROM organizations").Scan(&n), "and organizations' plans")
	for name, stmt := range map[string]string{
		"update": "UPDATE worker_pools SET max_replicas = 1",
		"insert": "INSERT INTO worker_pools (id, name) VALUES ('x', 'x')",
		"delete": "DELETE FROM worker_pools",
		"other":  "SELECT count(*) FROM jobs",
		// It reads the platform policy and organizations' plans, nothing
		// else of organizations, and writes neither.
		"policy write":         "UPDATE platform_policy SET document = '{}'",
		"policy_violation":     "UPDATE worker_pools SET policy_violation = 'x'",
		"organization plan":    "UPDATE organizations SET plan = 'enterprise'",
		"organization billing": "SELECT billing_email FROM organizations",
	} {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, name)
		require.Equal(t, "42501", pgErr.Code, "%s: insufficient_privilege", name)
	}
}

func TestListenPoolsSignalsChanges(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newHarness(t)
	changes := ListenPools(ctx, h.dbURL, time.Second, slog.New(slog.DiscardHandler))
	select {
	case <-changes: // the initial signal once listening
	case <-time.After(10 * time.Second):
		t.Fatal("no initial signal")
	}
	h.createPool(cpuSettings())
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("a pool insert sent no notification")
	}
}

func TestLeaderElectionOneLeader(t *testing.T) {
	t.Parallel()
	cs, err := kubernetes.NewForConfig(testREST)
	require.NoError(t, err)
	ctx := context.Background()
	ns := "lease-" + randHex()
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	var leading atomic.Int32
	leader := make(chan string, 4)
	type replica struct {
		cancel context.CancelFunc
		done   chan error
	}
	start := func(id string) replica {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		lc := LeaderConfig{Namespace: ns, Identity: id, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}
		go func() {
			done <- RunAsLeader(rctx, cs, lc, slog.New(slog.DiscardHandler), func(lctx context.Context) {
				if n := leading.Add(1); n != 1 {
					t.Errorf("%d replicas lead at once", n)
				}
				leader <- id
				<-lctx.Done()
				leading.Add(-1)
			})
		}()
		return replica{cancel, done}
	}
	replicas := map[string]replica{"a": start("a"), "b": start("b")}
	first := <-leader
	select {
	case id := <-leader:
		t.Fatalf("%s leads while %s does", id, first)
	case <-time.After(2 * time.Second):
	}
	var lease = func() string {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "mpegflow-operator", metav1.GetOptions{})
		require.NoError(t, err)
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
	require.Equal(t, first, lease())

	stopped := time.Now()
	replicas[first].cancel()
	require.NoError(t, <-replicas[first].done)
	select {
	case second := <-leader:
		require.NotEqual(t, first, second)
		require.Less(t, time.Since(stopped), 4*time.Second, "the follower leads within the lease duration")
	case <-time.After(10 * time.Second):
		t.Fatal("no follower took over")
	}
	for id, r := range replicas {
		if id != first {
			r.cancel()
			require.NoError(t, <-r.done)
		}
	}
}

func randHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
