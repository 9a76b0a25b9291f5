package operator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	// Observer, when set, learns of every read and write of the Lease and
	// of leading starting and stopping (Status, for /readyz and metrics).
	Observer LeaderObserver
}

// LeaderObserver is told what leader election does; *Status implements it.
type LeaderObserver interface {
	// LeaseContact reports one read or write of the Lease: nil when the
	// apiserver answered (a Lease held by another replica, or none yet,
	// is an answer), else the error (RBAC denial, apiserver unreachable).
	LeaseContact(err error)
	// SetLeading reports that this replica started or stopped leading.
	SetLeading(leading bool)
}

// observedLock reports every Get, Create and Update of the Lease to an
// observer: client-go's elector logs a failed attempt and retries, which
// leaves a replica that can never lead (RBAC denied) looking healthy.
type observedLock struct {
	resourcelock.Interface
	obs LeaderObserver
}

func (l observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if apierrors.IsNotFound(err) {
		l.obs.LeaseContact(nil) // no Lease yet: the elector creates it
	} else {
		l.obs.LeaseContact(err)
	}
	return rec, raw, err
}

func (l observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	l.obs.LeaseContact(err)
	return err
}

func (l observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	l.obs.LeaseContact(err)
	return err
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
	name := cmp.Or(lc.Name, "mpegflow-operator")
	var lock resourcelock.Interface = &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(name, lc.Namespace),
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: lc.Identity},
	}
	obs := lc.Observer
	if obs != nil {
		lock = observedLock{Interface: lock, obs: obs}
	} else {
		obs = noLeaderObserver{}
	}
	lost := false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cmp.Or(lc.LeaseDuration, 30*time.Second),
		RenewDeadline:   cmp.Or(lc.RenewDeadline, 20*time.Second),
		RetryPeriod:     cmp.Or(lc.RetryPeriod, 5*time.Second),
		ReleaseOnCancel: true,
		Name:            name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.InfoContext(ctx, "leading: reconciling pools", "identity", lc.Identity)
				obs.SetLeading(true)
				lead(ctx)
			},
			OnStoppedLeading: func() {
				obs.SetLeading(false)
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

type noLeaderObserver struct{}

func (noLeaderObserver) LeaseContact(error) {}
func (noLeaderObserver) SetLeading(bool)    {}

func metaFor(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
