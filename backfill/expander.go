package backfill

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/periodic"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Pusher puts released job ids of one organization on their lane.
type Pusher interface {
	PushMany(ctx context.Context, pool, lane string, t queue.Tenant, ids []string) error
}

// Config tunes the expander; zero values take the defaults noted.
type Config struct {
	// Period between rounds (default 2 s). A new batch is expanded at once
	// on the replica that accepted it (Kick); other replicas pick up
	// unfinished expansions within a period after a lease lapses.
	Period time.Duration
	// ChunkSize is how many inputs one transaction creates (default 5000).
	ChunkSize int
	// Lease is how long an expansion stays with a replica without
	// progress (default 30 s); every chunk renews it.
	Lease time.Duration
	// Inserters is how many chunk transactions of one batch run at once
	// (default 2): Postgres spends most of an insert on index upkeep and
	// foreign-key checks, which parallel sessions spread over its cores.
	Inserters int
	// ReleaseLimit bounds the held jobs one round releases per batch (default 1000).
	ReleaseLimit int
	// Owner names this replica in expansion leases (default: a random id).
	Owner string
	// Storage is the deployment's storage (objstore.Store.Storage()):
	// batches list and name objects only inside their organization's scope
	// of it, plus buckets granted to the organization.
	Storage objscope.Storage
	// Guard checks manifest URLs as the API did when it accepted the batch.
	Guard *netguard.Guard
	Clock clock.WithTicker
}

// Expander expands batches into jobs and releases held jobs of limited
// batches. Every replica runs one; leases and SKIP LOCKED keep them apart.
type Expander struct {
	cfg    Config
	store  *store.Store
	scopes *objscope.Resolver
	queue  Pusher
	objs   Objects
	log    *slog.Logger
	kick   chan struct{}
}

// NewExpander returns an expander with cfg defaulted.
func NewExpander(cfg Config, st *store.Store, q Pusher, objs Objects, log *slog.Logger) (*Expander, error) {
	cfg.Period = cmp.Or(cfg.Period, 2*time.Second)
	cfg.ChunkSize = cmp.Or(cfg.ChunkSize, 5000)
	cfg.Lease = cmp.Or(cfg.Lease, 30*time.Second)
	cfg.ReleaseLimit = cmp.Or(cfg.ReleaseLimit, 1000)
	cfg.Inserters = cmp.Or(cfg.Inserters, 2)
	cfg.Owner = cmp.Or(cfg.Owner, "expander-"+rand.Text())
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	scopes, err := objscope.NewResolver(cfg.Storage, st)
	if err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	if cfg.ChunkSize < 1 || cfg.ChunkSize > 50_000 {
		return nil, fmt.Errorf("backfill: chunk size %d out of range 1..50000", cfg.ChunkSize)
	}
	return &Expander{cfg: cfg, store: st, scopes: scopes, queue: q, objs: objs, log: log, kick: make(chan struct{}, 1)}, nil
}

// Kick asks for an expansion round now (after a batch was accepted).
func (e *Expander) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run expands and releases until ctx ends.
func (e *Expander) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	const hint = "Postgres, Redis and object storage"
	for _, r := range []periodic.Round{
		{Name: "batch_expander", Period: e.cfg.Period, Kick: e.kick, Run: e.ExpandOnce},
		{Name: "batch_releaser", Period: e.cfg.Period, Run: e.ReleaseOnce},
	} {
		g.Go(func() error { periodic.Loop(ctx, e.cfg.Clock, r, e.log, hint); return nil })
	}
	return g.Wait()
}

// ExpandOnce expands every batch it can claim, one after the other, and
// returns how many jobs it created.
func (e *Expander) ExpandOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		now := e.cfg.Clock.Now()
		b, ok, err := e.store.ClaimExpansion(ctx, e.cfg.Owner, now, now.Add(e.cfg.Lease))
		if err != nil || !ok {
			return total, err
		}
		n, err := e.expand(ctx, b)
		total += n
		if err != nil {
			return total, err
		}
	}
}

func (e *Expander) expand(ctx context.Context, b store.Batch) (created int, err error) {
	log := e.log.With(slog.String("batch_id", b.ID.String()), slog.String("org_id", b.OrgID.String()))
	objects, err := e.scopes.Scope(ctx, b.OrgID)
	var plan Plan
	if err == nil {
		plan, err = PlanOf(ctx, b.Source, Scope{Objects: objects, Guard: e.cfg.Guard}, StoreAssets{e.store})
		if b.ManifestETag != nil {
			plan.ManifestETag = *b.ManifestETag
		}
	}
	if err == nil {
		cur := Cursor{Key: b.CursorKey, Line: b.CursorLine, Offset: b.CursorOffset}
		var n int
		n, err = e.expandFrom(ctx, b, plan, cur)
		created += n
		if err == nil {
			err = e.store.FinishExpansion(ctx, b.ID, e.cfg.Owner, e.cfg.Clock.Now())
		}
	}
	switch _, invalid := validation.As(err); {
	case err == nil:
		log.InfoContext(ctx, "batch expanded", slog.Int("jobs_created", created))
		return created, nil
	case errors.Is(err, store.ErrLeaseLost):
		log.InfoContext(ctx, "batch expansion stopped: cancelled or taken over by another replica")
		return created, nil
	case errors.Is(err, objstore.ErrChanged):
		msg := "the manifest changed after the batch was accepted (its lines were counted and checked then): " + err.Error()
		log.WarnContext(ctx, "batch failed; submit the new manifest as a batch of its own", slog.String("error", msg))
		return created, e.store.FailExpansion(context.WithoutCancel(ctx), b.ID, e.cfg.Owner, msg, e.cfg.Clock.Now())
	case invalid || errors.Is(err, objstore.ErrNoObject):
		msg := "the batch's source is gone or no longer in the organization's storage scope: " + err.Error()
		log.WarnContext(ctx, "batch failed; resubmit it once the source exists again", slog.String("error", msg))
		return created, e.store.FailExpansion(context.WithoutCancel(ctx), b.ID, e.cfg.Owner, msg, e.cfg.Clock.Now())
	}
	if rerr := e.store.ReleaseExpansion(context.WithoutCancel(ctx), b.ID, e.cfg.Owner); rerr != nil {
		log.WarnContext(ctx, "could not release the expansion lease; another replica resumes once it lapses", slog.Any("error", rerr))
	}
	return created, fmt.Errorf("expand batch %s: %w", b.ID, err)
}

// expandFrom walks the plan from cur and commits its chunks with
// cfg.Inserters transactions in flight; the cursor advances only past
// chunks whose predecessors all committed, so a crash replays at most the
// chunks in flight (which create nothing twice).
func (e *Expander) expandFrom(ctx context.Context, b store.Batch, plan Plan, cur Cursor) (int, error) {
	type task struct {
		seq int
		ch  Chunk
	}
	var (
		mu       sync.Mutex
		created  int
		done     = map[int]Cursor{}
		frontier = 0 // chunks [0, frontier) are committed
	)
	tasks := make(chan task)
	// A failed walk lets the chunks already handed out commit (the cursor
	// then covers them); a failed insert stops the walk.
	wctx, stopWalk := context.WithCancel(ctx)
	defer stopWalk()
	walked := make(chan error, 1)
	go func() {
		defer close(tasks)
		seq := 0
		walked <- plan.Walk(wctx, e.objs, cur, e.cfg.ChunkSize, func(ch Chunk) error {
			select {
			case tasks <- task{seq, ch}:
				seq++
				return nil
			case <-wctx.Done():
				return wctx.Err()
			}
		})
	}()
	var g errgroup.Group
	for range e.cfg.Inserters {
		g.Go(func() error {
			for t := range tasks {
				now := e.cfg.Clock.Now()
				push, n, err := e.store.ExpandChunk(ctx, b, e.cfg.Owner, t.ch.Inputs, now, now.Add(e.cfg.Lease))
				if err != nil {
					stopWalk()
					return err
				}
				e.push(ctx, push)
				mu.Lock()
				created += n
				done[t.seq] = t.ch.Cursor
				var save *Cursor
				for c, ok := done[frontier]; ok; c, ok = done[frontier] {
					delete(done, frontier)
					frontier++
					save = &c
				}
				mu.Unlock()
				if save != nil {
					if err := e.store.SaveCursor(ctx, b.ID, e.cfg.Owner, store.BatchCursor{Key: save.Key, Line: save.Line, Offset: save.Offset}); err != nil {
						stopWalk()
						return err
					}
				}
			}
			return nil
		})
	}
	insertErr := g.Wait()
	walkErr := <-walked
	if insertErr != nil {
		return created, insertErr
	}
	return created, walkErr
}

// push sends committed ids to Redis; a failure loses nothing (the queue
// reconciler pushes queued jobs missing from their list).
func (e *Expander) push(ctx context.Context, jobs []store.QueuedJob) {
	if len(jobs) == 0 {
		return
	}
	type lane struct {
		pool, lane string
		org        uuid.UUID
	}
	byLane := map[lane][]string{}
	var orgs []uuid.UUID
	for _, j := range jobs {
		k := lane{j.PoolID, j.Lane, j.OrgID}
		if !slices.Contains(orgs, j.OrgID) {
			orgs = append(orgs, j.OrgID)
		}
		byLane[k] = append(byLane[k], j.ID.String())
	}
	tenants, err := queue.Tenants(ctx, e.store, orgs)
	if err != nil {
		e.log.WarnContext(ctx, "share weights not read; batch jobs are queued with the weights redis holds and the queue reconciler sets them, check Postgres",
			slog.Any("error", err))
	}
	for k, ids := range byLane {
		if err := e.queue.PushMany(ctx, k.pool, k.lane, tenants[k.org], ids); err != nil {
			e.log.WarnContext(ctx, "batch jobs committed but not pushed to redis; the queue reconciler will push them, check redis",
				slog.String("pool_id", k.pool), slog.String("org_id", k.org.String()), slog.Int("jobs", len(ids)), slog.Any("error", err))
		}
	}
}

// ReleaseOnce releases held jobs of limited batches and pushes them.
func (e *Expander) ReleaseOnce(ctx context.Context) (int, error) {
	jobs, err := e.store.ReleaseHeld(ctx, e.cfg.Clock.Now(), e.cfg.ReleaseLimit)
	if err != nil {
		return 0, err
	}
	e.push(ctx, jobs)
	return len(jobs), nil
}

// StoreAssets resolves manifest assets through the store; a missing asset
// (or another organization's) is a field error of the source.
type StoreAssets struct{ Store *store.Store }

// AssetKey implements AssetKeys.
func (a StoreAssets) AssetKey(ctx context.Context, orgID, id uuid.UUID) (string, error) {
	as, err := a.Store.GetAsset(ctx, orgID, id)
	if errors.Is(err, store.ErrNotFound) {
		var errs validation.Errors
		errs.Add("source.manifest_asset_id", "no asset %s in this organization", id)
		return "", errs
	}
	if err != nil {
		return "", err
	}
	return as.ObjectKey, nil
}
