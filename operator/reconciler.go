package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/internal/store"
)

// PoolSource lists every worker pool; *store.Store on the operator's
// read-only connection satisfies it.
type PoolSource interface {
	ListAllPools(ctx context.Context) ([]store.Pool, error)
}

var _ PoolSource = (*store.Store)(nil)

// PassObserver is told of every reconcile pass; *Status implements it
// (metrics, /readyz, /healthz).
type PassObserver interface {
	PassStarted()
	// PassFinished reports a pass's result (nil: every pool applied).
	PassFinished(err error)
	// PassInterrupted reports a pass cut short because its context ended.
	PassInterrupted()
}

// Reconciler makes the cluster match the pool rows: it applies every
// pool's objects and deletes managed objects no pool wants any more.
type Reconciler struct {
	cfg   Config
	pools PoolSource
	dyn   dynamic.Interface
	log   *slog.Logger
	obs   PassObserver
}

// ReconcilerOption sets an optional part of a Reconciler.
type ReconcilerOption func(*Reconciler)

// WithPassObserver reports every pass to obs.
func WithPassObserver(obs PassObserver) ReconcilerOption {
	return func(r *Reconciler) { r.obs = obs }
}

// NewReconciler validates cfg and returns a Reconciler writing through dyn.
func NewReconciler(cfg Config, pools PoolSource, dyn dynamic.Interface, log *slog.Logger, opts ...ReconcilerOption) (*Reconciler, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	r := &Reconciler{cfg: cfg, pools: pools, dyn: dyn, log: log, obs: noPassObserver{}}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

type noPassObserver struct{}

func (noPassObserver) PassStarted()       {}
func (noPassObserver) PassFinished(error) {}
func (noPassObserver) PassInterrupted()   {}

// Reconcile runs one level-based pass, reported to the PassObserver. A
// pool whose objects fail to render or apply is logged and skipped; its
// existing objects are kept (never pruned because of a bad row) and the
// pass reports an error at the end.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	r.obs.PassStarted()
	err := r.reconcile(ctx)
	if ctx.Err() != nil {
		r.obs.PassInterrupted()
		return err
	}
	r.obs.PassFinished(err)
	return err
}

func (r *Reconciler) reconcile(ctx context.Context) error {
	pools, err := r.pools.ListAllPools(ctx)
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	want := map[schema.GroupVersionResource]map[string]bool{}
	for _, res := range managedResources {
		want[res] = map[string]bool{}
	}
	failed := map[string]bool{} // pools whose existing objects must survive this pass
	var errs []error
	for _, p := range pools {
		log := r.log.With("pool_id", p.ID)
		objs, err := Render(r.cfg, p)
		if err != nil {
			log.ErrorContext(ctx, "pool not reconciled: its settings cannot be rendered; fix the pool's settings", "error", err)
			errs = append(errs, err)
			failed[p.ID] = true
			continue
		}
		list, err := objs.applyList()
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", p.ID, err))
			failed[p.ID] = true
			continue
		}
		for _, o := range list {
			want[o.resource][o.obj.GetName()] = true
			if err := r.apply(ctx, o); err != nil {
				log.ErrorContext(ctx, "apply failed; retrying next pass", "kind", o.obj.GetKind(), "name", o.obj.GetName(), "error", err)
				errs = append(errs, fmt.Errorf("pool %s: %w", p.ID, err))
			}
		}
	}
	for _, res := range slices.Backward(managedResources) {
		if err := r.prune(ctx, res, want[res], failed); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// apply server-side applies o as the operator's field manager, forcing
// ownership: a hand edit of a field the operator sets is put back.
func (r *Reconciler) apply(ctx context.Context, o object) error {
	_, err := r.dyn.Resource(o.resource).Namespace(r.cfg.Namespace).Apply(ctx, o.obj.GetName(), o.obj,
		metav1.ApplyOptions{FieldManager: ManagedBy, Force: true})
	if err != nil {
		return fmt.Errorf("apply %s %s: %w", o.obj.GetKind(), o.obj.GetName(), err)
	}
	return nil
}

// prune deletes the managed objects of res that are not wanted, except
// those of pools that failed to render (their row still exists).
func (r *Reconciler) prune(ctx context.Context, res schema.GroupVersionResource, want, failed map[string]bool) error {
	list, err := r.dyn.Resource(res).Namespace(r.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
	if err != nil {
		return fmt.Errorf("list %s: %w", res.Resource, err)
	}
	var errs []error
	for _, item := range list.Items {
		pool := item.GetLabels()[LabelPool]
		if want[item.GetName()] || failed[pool] {
			continue
		}
		log := r.log.With("pool_id", pool)
		// Background: KEDA's Jobs (owned by the ScaledJob) go with it.
		err := r.dyn.Resource(res).Namespace(r.cfg.Namespace).Delete(ctx, item.GetName(),
			metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", res.Resource, item.GetName(), err))
			continue
		}
		log.InfoContext(ctx, "deleted object no pool wants", "resource", res.Resource, "name", item.GetName())
	}
	return errors.Join(errs...)
}

// Run reconciles at once, then every period and whenever changes fires,
// until ctx ends. A failed pass is logged and retried on the next tick.
func (r *Reconciler) Run(ctx context.Context, period time.Duration, changes <-chan struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		start := time.Now()
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.ErrorContext(ctx, "reconcile pass incomplete; retrying next period", "error", err)
		} else if ctx.Err() == nil {
			r.log.DebugContext(ctx, "reconciled", "duration", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
		}
	}
}
