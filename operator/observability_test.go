package operator

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// TestReconcileMetrics runs the real reconciler against envtest with a
// Status observing it: a pass that applies every pool counts as a success
// and sets the last-success time; a pass that cannot apply (its namespace
// does not exist) counts as an error, leaves the last success alone and,
// after UnreadyAfterPeriods periods, makes the leader unready.
func TestReconcileMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createPool(cpuSettings())
	s, clk, m := newTestStatus(t, StatusConfig{})
	s.LeaseContact(nil)
	s.SetLeading(true)

	rec, err := NewReconciler(h.cfg, h.rec.pools, h.dyn, h.rec.log, WithPassObserver(s))
	require.NoError(t, err)
	require.NoError(t, rec.Reconcile(context.Background()))
	require.Equal(t, 1.0, sample(t, m, `mpegflow_operator_reconcile_total{result="success"}`))
	require.Equal(t, 0.0, sample(t, m, `mpegflow_operator_reconcile_total{result="error"}`))
	require.Equal(t, float64(epoch.Unix()), sample(t, m, "mpegflow_operator_last_success_timestamp_seconds"))
	require.Equal(t, 1.0, sample(t, m, "mpegflow_operator_reconcile_duration_seconds_count"))
	require.Equal(t, 1.0, sample(t, m, "mpegflow_operator_is_leader"))
	require.NoError(t, s.Ready())

	cfg := h.cfg
	cfg.Namespace = "missing-" + randHex()
	broken, err := NewReconciler(cfg, h.rec.pools, h.dyn, h.rec.log, WithPassObserver(s))
	require.NoError(t, err)
	clk.SetTime(clk.Now().Add(3*testPeriod + time.Second))
	s.LeaseContact(nil)
	err = broken.Reconcile(context.Background())
	require.Error(t, err)
	require.True(t, apierrors.IsNotFound(err), "the namespace is missing: %v", err)
	require.Equal(t, 1.0, sample(t, m, `mpegflow_operator_reconcile_total{result="success"}`))
	require.Equal(t, 1.0, sample(t, m, `mpegflow_operator_reconcile_total{result="error"}`))
	require.Equal(t, float64(epoch.Unix()), sample(t, m, "mpegflow_operator_last_success_timestamp_seconds"), "a failed pass is no success")
	require.Equal(t, 2.0, sample(t, m, "mpegflow_operator_reconcile_duration_seconds_count"))
	require.ErrorContains(t, s.Ready(), "not found", "the leader is unready and says why")

	require.NoError(t, rec.Reconcile(context.Background()))
	require.NoError(t, s.Ready(), "ready again after a success")
	require.Equal(t, float64(clk.Now().Unix()), sample(t, m, "mpegflow_operator_last_success_timestamp_seconds"))
}

// signalObserver forwards to a Status and signals leading and every failed
// Lease contact, so a test waits for events instead of sleeping.
type signalObserver struct {
	*Status
	leading chan bool
	failed  chan error
}

func (o signalObserver) LeaseContact(err error) {
	o.Status.LeaseContact(err)
	if err != nil {
		select {
		case o.failed <- err:
		default:
		}
	}
}

func (o signalObserver) SetLeading(b bool) {
	o.Status.SetLeading(b)
	o.leading <- b
}

// TestLeaderElectionReportsToStatus: against envtest, a replica that takes
// the Lease is ready and exports is_leader 1 (0 once it stops); a replica
// whose identity may not read Leases (RBAC) is unready and /readyz names
// the denial.
func TestLeaderElectionReportsToStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(testREST)
	require.NoError(t, err)
	ns := "lease-" + randHex()
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	lc := LeaderConfig{Namespace: ns, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 100 * time.Millisecond}

	// run starts replica id's elector, after before (if any) has looked at
	// its status as it is before the elector runs.
	run := func(t *testing.T, cs kubernetes.Interface, id string, before func(signalObserver)) (signalObserver, *telemetry.OperatorMetrics, context.CancelFunc, chan error) {
		s, _, m := newTestStatus(t, StatusConfig{LeaseDuration: lc.LeaseDuration})
		obs := signalObserver{Status: s, leading: make(chan bool, 2), failed: make(chan error, 1)}
		if before != nil {
			before(obs)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		lc := lc
		lc.Identity, lc.Observer = id, obs
		go func() {
			done <- RunAsLeader(rctx, cs, lc, slog.New(slog.DiscardHandler), func(lctx context.Context) { <-lctx.Done() })
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		return obs, m, cancel, done
	}

	t.Run("leader", func(t *testing.T) {
		// Checked before the elector starts: once it runs, it may take the
		// Lease before any check here (it did, at load 4).
		obs, m, cancel, done := run(t, cs, "a", func(obs signalObserver) {
			require.ErrorContains(t, obs.Ready(), "has not reached its Lease", "not ready before the elector ran")
		})
		select {
		case b := <-obs.leading:
			require.True(t, b)
		case <-time.After(30 * time.Second):
			t.Fatal("replica a never led")
		}
		require.NoError(t, obs.Ready())
		require.Equal(t, 1.0, sample(t, m, "mpegflow_operator_is_leader"))
		cancel()
		require.NoError(t, <-done)
		done <- nil // for the cleanup
		require.False(t, <-obs.leading)
		require.Equal(t, 0.0, sample(t, m, "mpegflow_operator_is_leader"))
	})

	t.Run("denied by RBAC", func(t *testing.T) {
		rc := rest.CopyConfig(testREST)
		rc.Impersonate = rest.ImpersonationConfig{UserName: "mpegflow-test-no-rbac"}
		denied, err := kubernetes.NewForConfig(rc)
		require.NoError(t, err)
		obs, m, _, _ := run(t, denied, "b", nil)
		select {
		case err := <-obs.failed:
			require.True(t, apierrors.IsForbidden(err), "want forbidden, got %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the denied replica reported no failed Lease read")
		}
		require.ErrorContains(t, obs.Ready(), "forbidden")
		require.Equal(t, 0.0, sample(t, m, "mpegflow_operator_is_leader"))
	})
}
