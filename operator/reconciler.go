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

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// AnnotationPolicyViolation is set on the NetworkPolicy of a pool outside
// the platform policy, saying why the operator renders no ScaledJob for it
// (kubectl describe shows it; the API's pool shows the same reason, which
// the apiserver records, as policy_violation). Server-side apply drops it
// once the pool complies.
const AnnotationPolicyViolation = "mpegflow.io/policy-violation"

// PoolSource lists every worker pool and reads the platform policy they
// are checked against; *store.Store on the operator's read-only connection
// satisfies it (migrations/0012_platform_policy.up.sql grants the reads).
type PoolSource interface {
	ListAllPools(ctx context.Context) ([]store.Pool, error)
	// GetPlatformPolicy answers store.ErrNotFound before `serve` seeded it.
	GetPlatformPolicy(ctx context.Context) (store.PlatformPolicy, error)
	ListPolicyPools(ctx context.Context) ([]store.PolicyPool, error)
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
	refused, checked, err := r.outsidePolicy(ctx)
	if err != nil {
		return err
	}
	want := map[schema.GroupVersionResource]map[string]bool{}
	for _, res := range managedResources {
		want[res] = map[string]bool{}
	}
	failed := map[string]bool{} // pools whose existing objects must survive this pass
	var errs []error
	for _, p := range pools {
		log := r.log.With("pool_id", p.ID)
		if !p.Shared() && !checked[p.ID] {
			// Created between the two reads: checked on the next pass.
			failed[p.ID] = true
			continue
		}
		objs, err := Render(r.cfg, p)
		if err != nil {
			log.ErrorContext(ctx, "pool not reconciled: its settings cannot be rendered; fix the pool's settings", "error", err)
			errs = append(errs, err)
			failed[p.ID] = true
			continue
		}
		if vs, ok := refused[p.ID]; ok {
			// Outside the platform policy: no ScaledJob, so KEDA starts no
			// pod with settings the platform does not allow. The Secret,
			// TriggerAuthentication and NetworkPolicy stay, so pods already
			// running keep their isolation and finish their jobs; prune
			// orphans those pods' Jobs instead of deleting them.
			objs.refuse(vs.String())
			log.WarnContext(ctx, "pool outside the platform policy: its ScaledJobs are removed and none is rendered until it complies; "+
				"fix the pool (PATCH /v1/pools/{id}) or relax the policy (PUT /v1/platform/policy)", "policy_violation", vs.String())
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
		if err := r.prune(ctx, res, want[res], failed, refused); err != nil {
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
// those of pools that failed to render (their row still exists). The
// ScaledJobs of pools outside the policy are deleted orphaning their Jobs,
// so encodes already running finish.
func (r *Reconciler) prune(ctx context.Context, res schema.GroupVersionResource, want, failed map[string]bool, refused map[string]apiv1.PolicyViolations) error {
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
		// Background: KEDA's Jobs (owned by the ScaledJob) go with it;
		// Orphan for a pool outside the policy, whose running Jobs finish.
		propagation := metav1.DeletePropagationBackground
		if _, ok := refused[pool]; ok {
			propagation = metav1.DeletePropagationOrphan
		}
		err := r.dyn.Resource(res).Namespace(r.cfg.Namespace).Delete(ctx, item.GetName(),
			metav1.DeleteOptions{PropagationPolicy: ptr.To(propagation)})
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

// outsidePolicy checks every dedicated pool against the platform policy
// stored in Postgres, itself rather than trusting the apiserver's record
// (defence in depth: a row written past the API, or a policy tightened
// since, is caught here). Before the apiserver seeded a policy, the
// built-in default applies. An error fails the pass before anything is
// applied or pruned.
// checked names every pool the check saw.
func (r *Reconciler) outsidePolicy(ctx context.Context) (refused map[string]apiv1.PolicyViolations, checked map[string]bool, err error) {
	policy := apiv1.DefaultPlatformPolicy()
	stored, err := r.pools.GetPlatformPolicy(ctx)
	switch {
	case err == nil:
		policy = stored.Policy
	case errors.Is(err, store.ErrNotFound):
		r.log.DebugContext(ctx, "no platform policy stored yet; checking pools against the built-in default until serve seeds one")
	default:
		return nil, nil, fmt.Errorf("read the platform policy: %w", err)
	}
	pools, err := r.pools.ListPolicyPools(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list pools with their plans: %w", err)
	}
	checked = make(map[string]bool, len(pools))
	for _, p := range pools {
		checked[p.ID] = true
	}
	return store.CheckPolicy(policy, pools), checked, nil
}
