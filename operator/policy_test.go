package operator

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// testPlatformPolicy is the default policy, with the GPU node selector the
// operator tests use allowed on enterprise.
func testPlatformPolicy() apiv1.PlatformPolicy {
	p := apiv1.DefaultPlatformPolicy()
	ent := p.Plans["enterprise"]
	ent.NodeSelectors = append(ent.NodeSelectors, "cloud.example/accelerator=*")
	p.Plans["enterprise"] = ent
	return p
}

func TestReconcileRefusesAPoolOutsideThePolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	set := cpuSettings()
	set.MaxReplicas = 20
	p := h.createPool(set)
	h.reconcile()
	live, backfill := ScaledJobName(p.ID, apiv1.LaneLive), ScaledJobName(p.ID, apiv1.LaneBackfill)
	h.scaledJob(live)
	h.scaledJob(backfill)

	// scaledJobGone: deleted with propagation Orphan, so encodes already
	// running finish. The API server marks the object with the orphan
	// finalizer, which the garbage collector removes once it has orphaned
	// the Jobs; envtest runs no garbage collector, so the test does its
	// part after checking the operator asked for exactly that.
	scaledJobGone := func(name string) bool {
		sj, err := h.dyn.Resource(ScaledJobResource).Namespace(h.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		require.NoError(t, err)
		if sj.GetDeletionTimestamp() == nil || !slices.Contains(sj.GetFinalizers(), metav1.FinalizerOrphanDependents) {
			return false
		}
		_, err = h.dyn.Resource(ScaledJobResource).Namespace(h.ns).Patch(ctx, name, types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		require.NoError(t, err)
		_, err = h.dyn.Resource(ScaledJobResource).Namespace(h.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	netpol := func() networkingv1.NetworkPolicy {
		var np networkingv1.NetworkPolicy
		require.NoError(t, h.get(NetworkPolicyResource, NetworkPolicyName(p.ID), &np))
		return np
	}
	user := h.org.User.ID
	for name, tc := range map[string]struct {
		tighten func(*apiv1.PlatformPolicy)
		reason  string
	}{
		"a ceiling lowered": {func(pol *apiv1.PlatformPolicy) {
			ent := pol.Plans["enterprise"]
			ent.MaxReplicasPerPool = 10
			pol.Plans["enterprise"] = ent
		}, "max_replicas_per_pool (max_replicas): must be at most 10"},
		"dedicated pools taken away": {func(pol *apiv1.PlatformPolicy) {
			ent := pol.Plans["enterprise"]
			ent.DedicatedPools = false
			pol.Plans["enterprise"] = ent
		}, "dedicated_pools"},
		"a resource ceiling": {func(pol *apiv1.PlatformPolicy) {
			ent := pol.Plans["enterprise"]
			ent.Resources.CPURequest = "500m"
			pol.Plans["enterprise"] = ent
		}, "resources (resources.cpu_request): must be at most 500m"},
	} {
		// Sequential on one harness: each case tightens, checks, relaxes.
		tight := testPlatformPolicy()
		tc.tighten(&tight)
		_, err := h.admin.PutPlatformPolicy(ctx, tight, user)
		require.NoError(t, err, name)
		h.reconcile()
		require.True(t, scaledJobGone(live), "%s: no live ScaledJob for a pool outside the policy", name)
		require.True(t, scaledJobGone(backfill), "%s: nor a backfill one", name)
		np := netpol() // the pool's isolation stays for the pods still running
		require.Contains(t, np.Annotations[AnnotationPolicyViolation], tc.reason, name)
		// The shared pool is the platform's and is not checked.
		h.scaledJob(ScaledJobName(apiv1.DefaultPoolID, apiv1.LaneLive))

		_, err = h.admin.PutPlatformPolicy(ctx, testPlatformPolicy(), user)
		require.NoError(t, err, name)
		h.reconcile()
		h.scaledJob(live)
		h.scaledJob(backfill)
		require.NotContains(t, netpol().Annotations, AnnotationPolicyViolation, "%s: the record clears once the pool complies", name)
	}

	// A pool fixed, rather than the policy relaxed, comes back too; and a
	// pool written past the API (straight into Postgres) is caught.
	_, err := h.admin.UpdatePool(ctx, h.scope(), p.ID, func(s *store.PoolSettings) error {
		s.Accelerator = apiv1.AcceleratorNVIDIA
		s.MaxReplicas, s.BackfillMaxReplicas = 40, 0
		s.CronWindows = []store.CronWindow{}
		return nil
	})
	require.NoError(t, err)
	h.reconcile()
	require.True(t, scaledJobGone(live))
	require.Contains(t, netpol().Annotations[AnnotationPolicyViolation], "max_gpus")
	_, err = h.admin.UpdatePool(ctx, h.scope(), p.ID, func(s *store.PoolSettings) error {
		s.MaxReplicas = 8
		return nil
	})
	require.NoError(t, err)
	h.reconcile()
	h.scaledJob(live)
	require.NotContains(t, netpol().Annotations, AnnotationPolicyViolation)
}
