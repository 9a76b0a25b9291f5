// Package apiserver is MpegFlow's customer-facing REST API (Fiber v2): jobs,
// workflows, assets, webhooks, the organization and its members, pools and
// workers, and platform administration. Every route, its permission and its
// OpenAPI description come from one table (routes.go).
package apiserver

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/console"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/groupcommit"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// Config holds the API's tunables. Zero values take the defaults noted.
type Config struct {
	// BodyLimit caps request bodies (default 1 MiB); larger answer 413.
	BodyLimit int
	// UploadSource is the object store's Content-Security-Policy source
	// (objstore.Store.ConnectSource): the web console uploads files
	// straight to it. Empty: the console's pages reach no other origin.
	UploadSource string
	// Guard is the SSRF guard for job input and webhook URLs (default:
	// public https only).
	Guard *netguard.Guard
	// DefaultMaxAttempts is a job's attempt budget when the request has none (default 3).
	DefaultMaxAttempts int
	// ReadTimeout bounds reading a request (default 30 s).
	ReadTimeout time.Duration
	// Metrics, when set, counts cancelled jobs in mpegflow_jobs_total.
	Metrics *telemetry.Metrics
	// Hub, when set, serves live events on GET /ws.
	Hub *events.Hub
	// Batches, when set, is told about every accepted batch so its
	// expansion starts at once instead of at the expander's next round.
	Batches BatchKicker
	// Planner, when set, renders what the operator applies for a pool
	// (*operator.Planner, built from the environment `mpegflow operator`
	// reads), and GET /v1/pools/{id}/plan shows it. Unset, that route
	// answers 503 (problem type plan-unavailable).
	Planner PoolPlanner
	// Clock dates member invitations and decides when they expire (default:
	// the real clock).
	Clock clock.PassiveClock
	// Limiter, when set, limits authenticated requests per API key and per
	// organization, and failed authentications per client address (429
	// with Retry-After; RateLimit-* headers show the budget). Unset,
	// nothing is limited. /health, /ready and /v1/openapi.json never are.
	Limiter *ratelimit.Limiter
	// TrustedProxies are the reverse proxies (the ingress controller) whose
	// X-Forwarded-For names the client address. Empty: the TCP peer is the
	// client and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// Uploads sets when an asset is uploaded in parts, and their size.
	Uploads UploadConfig
	// KeyCache, when set, answers authentication of recently seen API keys
	// from memory (see KeyCache; its Run must be running for it to serve).
	// Unset, every request reads its key from Postgres.
	KeyCache *KeyCache
	// ContentKeys opens encrypted jobs' stored content keys (built from the
	// server secret). Unset, the key routes answer 503.
	ContentKeys *contentkey.Sealer
	// SessionTTL is how long a console sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// SubmitGather is how long a statement of submissions may wait for
	// more while they come at least four to the window (default 6 ms;
	// negative: never; see submitGather). Under lighter load nothing
	// waits.
	SubmitGather time.Duration
	// Handoff, when set, is the coordinator serving in this process: a
	// submitted job goes straight to one of its claims waiting on the
	// job's lane, when there is one, instead of onto the lane's list.
	Handoff Handoff
}

// Handoff gives submitted jobs to claims waiting in this process (the
// coordinator: dispatcher.Coordinator). Reserve takes a claim waiting idle
// on lane of pool before a submission's statement runs, for the statement
// to insert the job claimed by it (nil when none waits); settle, called
// once whatever the statement came to, gives the claim the job (claimed,
// or to claim) or a wake, and reports whether the job went to a claim.
// Offer takes a job just committed as queued (id, of organization org, on
// lane of pool) for a claim waiting on its lane, and reports whether one
// took it. announce runs when a claim takes the job, before the claim can
// see it.
type Handoff interface {
	Reserve(ctx context.Context, pool, lane, org string) (claim *store.JobClaim, settle func(job store.Job, created bool, announce func()) bool)
	Offer(pool, lane, org, id string, announce func()) bool
}

// Server serves the REST API.
type Server struct {
	cfg     Config
	store   *store.Store
	queue   *queue.Queue
	objects *objstore.Store
	scopes  *objscope.Resolver
	bus     *events.Bus
	hub     *events.Hub
	guard   *netguard.Guard
	keys    *KeyCache
	log     *slog.Logger
	app     *fiber.App
	// creates makes concurrent submissions with one statement (group
	// commit, docs/design/0019-control-plane-round-trips.md).
	creates *groupcommit.Group[store.NewJob, store.CreateResult]
	// pushes queues and announces committed jobs in one Redis round trip
	// for as many as are ready at once (the jobs of one statement above
	// are ready together).
	pushes *groupcommit.Group[queue.JobPush, error]
}

// Group commit of submissions: at most submitBatch in one statement,
// submitsInFlight statements at once (the second only for calls that
// waited submitSpill for the first), each bounded by submitTimeout, a
// batch lingering up to submitLinger for company (as the coordinator's
// claims).
const (
	submitBatch     = 64
	submitsInFlight = 2
	submitSpill     = 2 * time.Millisecond
	submitTimeout   = 30 * time.Second
	submitLinger    = time.Millisecond
	// submitGather is Config.SubmitGather's default. While submissions
	// come at least four to the window (about 700 a second and more) a
	// statement gathers them for up to this long (groupcommit.Group.Gather,
	// as the coordinator's completions): at 1,000 jobs/s about six a
	// statement rather than one or two, which took the servers' CPU a job
	// from 376-526 µs to 287-395 and Postgres's from 500-568 to 326-393,
	// for a dispatch p99 of 11.5-14.5 ms rather than 5.9-9.4 (issue 19,
	// docs/benchmarks.md, "Submissions gathered"). 4 ms and less never
	// gathers at 1,000 jobs/s (one a millisecond is four to 4 ms, not
	// more); 8 ms cost more latency and saved no more.
	submitGather = 6 * time.Millisecond
	// pushBatch caps the pushes sent to Redis in one round trip; one
	// round trip is in flight at once.
	pushBatch = 256
)

// submissionKeys keeps two submissions with one idempotency key out of one
// batch (the later is told it repeats the first), and two inserted claimed
// by one worker.
func submissionKeys(nj store.NewJob) []string {
	var keys []string
	if nj.IdempotencyKey != nil {
		keys = append(keys, nj.OrgID.String()+"\x00"+*nj.IdempotencyKey)
	}
	if nj.Claim != nil {
		// One upsert cannot register a worker twice (a pod that claims
		// twice at once may be reserved twice).
		keys = append(keys, "worker/"+nj.Claim.Worker.ID)
	}
	return keys
}

// New wires the API and registers every route of the route table.
func New(cfg Config, st *store.Store, q *queue.Queue, objects *objstore.Store, bus *events.Bus, log *slog.Logger) (*Server, error) {
	cfg.BodyLimit = cmp.Or(cfg.BodyLimit, 1<<20)
	cfg.DefaultMaxAttempts = cmp.Or(cfg.DefaultMaxAttempts, 3)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, 30*time.Second)
	if cfg.DefaultMaxAttempts < 1 || cfg.DefaultMaxAttempts > 20 {
		return nil, fmt.Errorf("apiserver: default max attempts %d out of range 1..20", cfg.DefaultMaxAttempts)
	}
	if err := cfg.Uploads.defaults(); err != nil {
		return nil, err
	}
	if cfg.Guard == nil {
		cfg.Guard = netguard.New(netguard.Config{})
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	scopes, err := objscope.NewResolver(objects.Storage(), st)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	log = slog.New(requestIDHandler{log.Handler()}) // every line of a request names its id
	s := &Server{cfg: cfg, store: st, queue: q, objects: objects, scopes: scopes, bus: bus, hub: cfg.Hub, guard: cfg.Guard, keys: cfg.KeyCache, log: log}
	var batchSizes, batchWaits, batchRuns, pushSizes, pushWaits, pushRuns prometheus.Observer
	if cfg.Metrics != nil {
		batchSizes, batchWaits, batchRuns = cfg.Metrics.GroupCommit("submit")
		pushSizes, pushWaits, pushRuns = cfg.Metrics.GroupCommit("push")
	}
	s.creates = groupcommit.New("submit", log, st.CreateJobs, submissionKeys, submitBatch, submitsInFlight, submitTimeout, batchSizes).
		Linger(submitLinger).Spill(submitSpill).Timed(batchWaits, batchRuns)
	if gather := cmp.Or(cfg.SubmitGather, submitGather); gather > 0 {
		s.creates.Gather(gather, nil)
	}
	// The batch never fails as a whole (each push has its own answer), so
	// no push is made twice.
	s.pushes = groupcommit.New("push", log, func(ctx context.Context, ps []queue.JobPush) ([]error, error) {
		return q.PushPublishMany(ctx, ps), nil
	}, nil, pushBatch, 1, submitTimeout, pushSizes).Linger(submitLinger).Timed(pushWaits, pushRuns)
	s.app = fiber.New(fiber.Config{
		AppName:               "mpegflow",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		DisableStartupMessage: true,
		Immutable:             true,
		ErrorHandler:          s.errorHandler,
	})
	s.app.Use(recoverPanics(s.log)) // first: a panic anywhere after it is a 500, not a crash
	s.app.Use(s.requestLog)
	s.app.Get("/health", s.health)
	s.app.Get("/ready", s.ready)
	s.app.Get("/v1/openapi.json", s.openAPI)
	console.Register(s.app, console.Options{UploadSource: cfg.UploadSource})
	for _, r := range s.routes() {
		s.app.Add(r.Method, r.Path, s.authenticate, s.limit, s.authorize(r.Perm), checkParams, r.handler)
	}
	for _, r := range s.publicRoutes() {
		s.app.Add(r.Method, r.Path, checkParams, r.handler)
	}
	s.app.Use(func(c *fiber.Ctx) error { return notFound("route " + c.Method() + " " + c.Path()) })
	return s, nil
}

// App exposes the Fiber app, for tests (app.Test) and for mounting /ws.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve rest api: %w", err)
	case <-ctx.Done():
		if err := s.app.ShutdownWithTimeout(10 * time.Second); err != nil {
			return fmt.Errorf("shut down rest api: %w", err)
		}
		return nil
	}
}

func (s *Server) health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{"postgres": "ok", "redis": "ok"}
	failed := false
	if err := s.store.Ping(ctx); err != nil {
		checks["postgres"], failed = err.Error(), true
	}
	if err := s.queue.Ping(ctx); err != nil {
		checks["redis"], failed = err.Error(), true
	}
	if failed {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": checks})
}
