package dispatcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/groupcommit"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/spare"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// Config holds the coordinator's tunables; zero values take the defaults.
type Config struct {
	// Secret signs worker tokens (HMAC-SHA256 of the pool id); at least 32 bytes.
	Secret []byte
	// Lease is how long a claim lives without a heartbeat (default 60 s).
	Lease time.Duration
	// HeartbeatInterval is what workers are told to heartbeat at (default Lease/4).
	HeartbeatInterval time.Duration
	// MaxWait caps a Claim's long poll (default 30 s).
	MaxWait time.Duration
	// PollInterval is how often a long-polling Claim looks again (default
	// 200 ms); a push wakes it sooner while RunWakeups runs.
	PollInterval time.Duration
	// BackoffBase and BackoffMax shape retry waits: base·2^(attempt−1),
	// capped, with ±20 % jitter (defaults 10 s and 15 min).
	BackoffBase, BackoffMax time.Duration
	// OutputChecks is how many storage HEADs one Complete runs at once to
	// check that the outputs it lists were uploaded (default 16).
	OutputChecks int
	// GroupCommitMaxBatch caps how many concurrent claims (or completions)
	// one statement makes (group commit,
	// docs/design/0019-control-plane-round-trips.md; default 64); 1 makes
	// every call its own statement.
	GroupCommitMaxBatch int
	// GroupCommitInFlight is how many claim (and how many heartbeat)
	// statements run at once (default 2; completions too when
	// CompleteGather is negative); calls arriving meanwhile wait and go
	// together in the next.
	GroupCommitInFlight int
	// GroupCommitSpill is how long claims (and heartbeats, and completions
	// when CompleteGather is negative) wait for the running statement
	// before a second runs beside it (default 2 ms; negative: statements
	// start as calls come, up to GroupCommitInFlight). So a statement held
	// up on a row lock delays the others by this much at most, while
	// under load each statement takes what came during the one before
	// (groupcommit.Group.Spill).
	GroupCommitSpill time.Duration
	// GroupCommitLinger is the longest a claim, heartbeat or pop batch
	// (a completion batch too when CompleteGather is negative) waits for
	// as many calls as recent batches held before it starts (default
	// 1 ms; never longer than half the recent statements' run time, and
	// nothing waits under light load: groupcommit.Group); negative: never.
	GroupCommitLinger time.Duration
	// CompleteGather is the longest a completion batch gathers while
	// completions keep coming (default 10 ms; negative: never). Nobody
	// waits on a completion (the pod is done), so under load each
	// statement completes many jobs at once, one statement in flight,
	// and under light load nothing waits (groupcommit.Group.Gather). It
	// gathers only while claims of this coordinator wait for work: when
	// every pod is busy, a pod's next claim would wait on its completion.
	CompleteGather time.Duration
	// PublicURL is the REST API's external base URL, without a trailing
	// slash; encrypted jobs' key and license URIs start with it (default
	// http://localhost:8080).
	PublicURL string
	// Clock is the time source (default the real clock).
	Clock clock.WithTicker
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
}

func (c *Config) defaults() error {
	if len(c.Secret) < 32 {
		return errors.New("dispatcher: the server secret must be at least 32 bytes (set MPEGFLOW_SERVER_SECRET)")
	}
	c.Lease = cmp.Or(c.Lease, 60*time.Second)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, c.Lease/4)
	c.MaxWait = cmp.Or(c.MaxWait, 30*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 200*time.Millisecond)
	c.BackoffBase = cmp.Or(c.BackoffBase, 10*time.Second)
	c.BackoffMax = cmp.Or(c.BackoffMax, 15*time.Minute)
	c.OutputChecks = cmp.Or(c.OutputChecks, 16)
	c.GroupCommitMaxBatch = cmp.Or(c.GroupCommitMaxBatch, 64)
	c.GroupCommitInFlight = cmp.Or(c.GroupCommitInFlight, 2)
	c.GroupCommitLinger = cmp.Or(c.GroupCommitLinger, time.Millisecond)
	c.GroupCommitSpill = cmp.Or(c.GroupCommitSpill, 2*time.Millisecond)
	c.CompleteGather = cmp.Or(c.CompleteGather, 10*time.Millisecond)
	c.PublicURL = strings.TrimSuffix(cmp.Or(c.PublicURL, "http://localhost:8080"), "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(c.PublicURL, "\"<>&\r\n") {
		return fmt.Errorf("dispatcher: public URL %q: want an absolute http(s) URL (MPEGFLOW_PUBLIC_URL)", c.PublicURL)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	if c.GroupCommitMaxBatch < 1 || c.GroupCommitInFlight < 1 {
		return fmt.Errorf("dispatcher: group commit batch %d and in-flight %d: want at least 1 each", c.GroupCommitMaxBatch, c.GroupCommitInFlight)
	}
	if c.OutputChecks < 1 {
		return fmt.Errorf("dispatcher: output checks %d: want at least 1 HEAD at a time", c.OutputChecks)
	}
	if c.HeartbeatInterval >= c.Lease {
		return fmt.Errorf("dispatcher: heartbeat interval %s must be shorter than the lease %s", c.HeartbeatInterval, c.Lease)
	}
	return nil
}

// Backoff is the wait before the retry that follows attempt (1-based):
// BackoffBase·2^(attempt−1) capped at BackoffMax, times a jitter in [0.8, 1.2).
func (c *Config) Backoff(attempt int) time.Duration {
	return backoff(c.BackoffBase, c.BackoffMax, attempt, 0.8, 0.4, c.Jitter())
}

// Coordinator implements mpegflow.coordinator.v1.
type Coordinator struct {
	coordinatorv1.UnimplementedCoordinatorServer
	cfg         Config
	sealer      *contentkey.Sealer
	store       *store.Store
	queue       *queue.Queue
	objects     *objstore.Store
	scopes      *objscope.Resolver
	bus         *events.Bus
	metrics     *telemetry.Metrics
	log         *slog.Logger
	wakeups     *wakeups
	claims      *groupcommit.Group[store.ClaimRequest, store.ClaimResult]
	completions *groupcommit.Group[store.CompleteRequest, store.CompleteResult]
	heartbeats  *groupcommit.Group[store.HeartbeatRequest, store.HeartbeatResult]
	pops        *groupcommit.Group[queue.Lane, queue.Popped]
	// idleClaims counts the claims waiting for work (their lane was
	// empty): while there are some, completions gather.
	idleClaims atomic.Int64
	// awaited counts the completions a pod's next job waits on
	// (awaitCompletion).
	awaited atomic.Int64
	// stopping is closed when Serve begins to stop: long-polling claims
	// end at once (see Claim) instead of holding the stop for MaxWait.
	stopping chan struct{}
	// spare runs the next claims of completions (startNext).
	spare    *spare.Goroutines
	stopOnce sync.Once
	// poolTokens holds each pool's worker token once a pod has presented
	// it (pool → []byte): every call is authenticated, and the HMAC was
	// a twentieth of a claim's allocations. Only tokens that checked out
	// are kept, so names made up by callers cost no memory. The token is
	// a function of the secret and the pool, and the secret is fixed for
	// the process's life; were it ever reloaded live, this must be
	// cleared with it.
	poolTokens sync.Map
	// poolOrgs holds the organization of each pool a submission has asked
	// to reserve a claim of (pool → org id, "" for the shared pool), read
	// once from Postgres: a pool's organization never changes, and only
	// pools with claims waiting here are looked up (Reserve).
	poolOrgs sync.Map
	// callMetrics holds each of the service's methods' series
	// (timeCall).
	callMetrics map[string]callMetric
}

var _ coordinatorv1.CoordinatorServer = (*Coordinator)(nil)

// maxPopBatch caps the pops sent to Redis in one round trip.
const maxPopBatch = 256

// New validates cfg and returns a Coordinator.
func New(cfg Config, st *store.Store, q *queue.Queue, objects *objstore.Store, bus *events.Bus, m *telemetry.Metrics, log *slog.Logger) (*Coordinator, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	scopes, err := objscope.NewResolver(objects.Storage(), st)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	sealer, err := contentkey.NewSealer(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	c := &Coordinator{cfg: cfg, sealer: sealer, store: st, queue: q, objects: objects, scopes: scopes, bus: bus, metrics: m, log: log, stopping: make(chan struct{}), spare: spare.New(spare.Idle)}
	c.wakeups = newWakeups(c.pushHanded, c.cfg.Clock.After)
	c.callMetrics = c.callMetricsOf(&coordinatorv1.Coordinator_ServiceDesc)
	sizes, waits, runs := m.GroupCommit("claim")
	c.claims = groupcommit.New("claim", log, st.ClaimBatch, claimKeys, cfg.GroupCommitMaxBatch, cfg.GroupCommitInFlight,
		groupCommitTimeout, sizes).Linger(cfg.GroupCommitLinger).Spill(cfg.GroupCommitSpill).Timed(waits, runs)
	// Completions that gather run one statement at a time.
	completesInFlight := cfg.GroupCommitInFlight
	if cfg.CompleteGather > 0 {
		completesInFlight = 1
	}
	sizes, waits, runs = m.GroupCommit("complete")
	c.completions = groupcommit.New("complete", log, st.CompleteBatch, completeKeys, cfg.GroupCommitMaxBatch, completesInFlight,
		groupCommitTimeout, sizes).Timed(waits, runs)
	if cfg.CompleteGather > 0 {
		c.completions.Gather(cfg.CompleteGather, c.podsWait)
	} else {
		c.completions.Linger(cfg.GroupCommitLinger).Spill(cfg.GroupCommitSpill)
	}
	sizes, waits, runs = m.GroupCommit("heartbeat")
	c.heartbeats = groupcommit.New("heartbeat", log, st.HeartbeatBatch, heartbeatKeys, cfg.GroupCommitMaxBatch, cfg.GroupCommitInFlight,
		groupCommitTimeout, sizes).Linger(cfg.GroupCommitLinger).Spill(cfg.GroupCommitSpill).Timed(waits, runs)
	// Claims' pops go to Redis together: one pipeline per round trip (a
	// pop script call per lane, taking an id for each of its claims), one
	// round trip in flight. The batch never fails as a whole (each pop has
	// its own answer, an error shared by its lane's call at worst), so no
	// pop is repeated: a pop that may have taken an id is never made again
	// for the same caller.
	sizes, waits, runs = m.GroupCommit("pop")
	c.pops = groupcommit.New("pop", log, func(ctx context.Context, lanes []queue.Lane) ([]queue.Popped, error) {
		return q.PopMany(ctx, lanes), nil
	}, nil, maxPopBatch, 1, groupCommitTimeout, sizes).Linger(cfg.GroupCommitLinger).Timed(waits, runs)
	return c, nil
}

// podsWait reports whether claims of this coordinator wait for work, and
// no pod's next job waits on a completion (awaitCompletion): then no job
// waits for a pod, and a completion that gathers delays nothing but its
// own answer. When no claim waits (every pod busy, a backlog), a pod's
// next claim waits on its completion, which goes at once.
func (c *Coordinator) podsWait() bool { return c.idleClaims.Load() > 0 && c.awaited.Load() == 0 }

// awaitCompletion counts a completion whose Complete's next claim has
// its job: the pod has the job only once the completion answers, so
// gathering batches go now. completionAnswered uncounts it.
func (c *Coordinator) awaitCompletion() {
	c.awaited.Add(1)
	c.completions.Recheck()
}

func (c *Coordinator) completionAnswered() { c.awaited.Add(-1) }

// claimIdle counts a claim that waits for work; claimBusy, one that stops
// waiting. When the last stops, a gathering completion batch is told to
// ask again (it goes, rather than wait out its window while jobs may wait
// for pods).
func (c *Coordinator) claimIdle() { c.idleClaims.Add(1) }

func (c *Coordinator) claimBusy() {
	if c.idleClaims.Add(-1) == 0 {
		c.completions.Recheck()
	}
}

func (c *Coordinator) emit(ctx context.Context, j store.Job, typ string, data map[string]any) {
	// The event points at copies: a pointer into j would move the whole
	// job to the heap on every call.
	id, org := j.ID, j.OrgID
	if j.ParentID != nil {
		// A task of a split job is seen through its job: job.started of
		// a task is task.started of the job, naming the task.
		id, typ = *j.ParentID, "task."+strings.TrimPrefix(typ, "job.")
		data = maps.Clone(data)
		if data == nil {
			data = map[string]any{}
		}
		data["task"], data["task_id"] = j.Task, j.ID
		var td store.TaskData
		if json.Unmarshal(j.TaskData, &td) == nil && td.Chunk != nil {
			data["chunk"] = td.Chunk.Index
		}
	}
	// Posted, not waited for: nobody waits on a job's live events, and
	// those a replica posts within a few milliseconds share a round trip.
	if err := c.bus.Post(events.Event{Type: typ, OrgID: &org, JobID: &id, PoolID: j.PoolID, Data: data}); err != nil {
		c.log.WarnContext(ctx, "event not published; live subscribers miss it, check redis",
			slog.String("event", typ), slog.String("job_id", j.ID.String()), slog.Any("error", err))
	}
}

func (c *Coordinator) policy() store.FailPolicy {
	return store.FailPolicy{Now: c.cfg.Clock.Now(), Backoff: c.cfg.Backoff}
}

// afterFail pushes or delays a job whose attempt ended, by outcome.
func (c *Coordinator) afterFail(ctx context.Context, j store.Job, outcome string) {
	switch outcome {
	case store.OutcomeRequeued:
		tenants, err := queue.Tenants(ctx, c.store, []uuid.UUID{j.OrgID})
		if err != nil {
			c.log.WarnContext(ctx, "share weight not read; the job is requeued with the weight redis holds and the queue reconciler sets it, check Postgres",
				slog.String("job_id", j.ID.String()), slog.String("org_id", j.OrgID.String()), slog.Any("error", err))
		}
		if err := c.queue.Push(ctx, j.PoolID, j.Lane, tenants[j.OrgID], j.ID.String(), j.Priority); err != nil {
			c.log.WarnContext(ctx, "requeued job not pushed; the queue reconciler will push it", slog.String("job_id", j.ID.String()), slog.Any("error", err))
		}
		c.emit(ctx, j, "job.requeued", map[string]any{"error": deref(j.Error)})
	case store.OutcomeRetryScheduled:
		if err := c.queue.Delay(ctx, j.ID.String(), *j.RunAfter); err != nil {
			c.log.WarnContext(ctx, "retry not scheduled in redis; the queue reconciler will promote it when due", slog.String("job_id", j.ID.String()), slog.Any("error", err))
		}
		c.emit(ctx, j, "job.retry_scheduled", map[string]any{"error": deref(j.Error), "retry_at": j.RunAfter})
	case store.OutcomeFailed:
		c.metrics.JobsTotal.WithLabelValues(store.JobFailed).Inc()
		c.emit(ctx, j, "job.failed", map[string]any{"error": deref(j.Error)})
		c.advance(ctx, j) // a task failing for good fails its job
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
