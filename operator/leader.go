package operator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderConfig tunes leader election. Only the leader reconciles, so two
// replicas never fight over a field.
type LeaderConfig struct {
	// Namespace and Name of the coordination.k8s.io Lease (default name
	// "mpegflow-operator").
	Namespace string
	Name      string
	// Identity of this replica (required; the pod name in a cluster).
	Identity string
	// LeaseDuration is how long a lease holds without renewal (default
	// 30 s); RenewDeadline (default 20 s) and RetryPeriod (default 5 s) as in
	// client-go's leaderelection.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLostLeadership ends RunAsLeader when the lease could not be renewed;
// the process should exit so it restarts as a follower.
var ErrLostLeadership = errors.New("operator: lost the leader lease")

// RunAsLeader blocks campaigning for the Lease and runs lead while this
// replica holds it. It returns nil when ctx ends (the lease is released so a
// follower takes over at once) and ErrLostLeadership when the lease was
// lost while ctx was alive.
func RunAsLeader(ctx context.Context, cs kubernetes.Interface, lc LeaderConfig, log *slog.Logger, lead func(ctx context.Context)) error {
	if lc.Namespace == "" || lc.Identity == "" {
		return errors.New("operator: leader election needs a namespace and an identity")
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(cmp.Or(lc.Name, "mpegflow-operator"), lc.Namespace),
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: lc.Identity},
	}
	lost := false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cmp.Or(lc.LeaseDuration, 30*time.Second),
		RenewDeadline:   cmp.Or(lc.RenewDeadline, 20*time.Second),
		RetryPeriod:     cmp.Or(lc.RetryPeriod, 5*time.Second),
		ReleaseOnCancel: true,
		Name:            lock.LeaseMeta.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.InfoContext(ctx, "leading: reconciling pools", "identity", lc.Identity)
				lead(ctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost = true
				}
				log.InfoContext(ctx, "stopped leading", "identity", lc.Identity)
			},
			OnNewLeader: func(id string) {
				if id != lc.Identity {
					log.InfoContext(ctx, "following", "leader", id, "identity", lc.Identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("operator: leader election: %w", err)
	}
	le.Run(ctx)
	if lost {
		return ErrLostLeadership
	}
	return nil
}

func metaFor(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
