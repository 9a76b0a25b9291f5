package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/dispatcher"
	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// hubBuffer is how many events a WebSocket client may lag behind before it
// is dropped.
const hubBuffer = 256

// Server is what `serve` (and `dev`) runs in one process, wired from the
// configuration: connections, the event bus and hub, metrics and the
// coordinator. Both commands share it so dev runs exactly what serve runs.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	db      *pgxpool.Pool
	hot     *pgxpool.Pool // the group-commit statements' (store.WithHotPath)
	rdb     *redis.Client
	store   *store.Store
	queue   *queue.Queue
	objects *objstore.Store
	metrics *telemetry.Metrics
	bus     *events.Bus
	hub     *events.Hub
	coord   *dispatcher.Coordinator
	batches *backfill.Expander
	// guard is the SSRF guard every component checks customer URLs with.
	guard *netguard.Guard
	// Plan, when set before Serve, lets the REST API show pools' plans
	// (serve only).
	Plan apiserver.PoolPlanner
}

// Open connects to Postgres and Redis and builds the coordinator.
// Close releases the connections.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	hot, err := store.OpenHotPath(ctx, cfg.DatabaseURL)
	if err != nil {
		db.Close()
		return nil, err
	}
	ropts, err := cfg.RedisOptions()
	if err != nil {
		hot.Close()
		db.Close()
		return nil, err
	}
	rdb := redis.NewClient(ropts)
	s := &Server{cfg: cfg, log: log, db: db, hot: hot, rdb: rdb, guard: cfg.Guard()}
	if s.objects, err = objstore.New(ctx, cfg.S3); err != nil {
		s.Close()
		return nil, err
	}
	s.store = store.New(db).WithHotPath(hot)
	s.queue = queue.New(rdb, queue.NewKeys(cfg.RedisKeyPrefix))
	s.metrics = telemetry.New()
	s.store.ObservePipelines(s.metrics.GroupCommit("pipeline"))
	s.bus = events.NewBus(s.queue, time.Now)
	s.bus.ObserveDispatch(func(d time.Duration) { s.metrics.EventDispatch.Observe(d.Seconds()) })
	publishes := s.metrics.GroupCommitBatch.WithLabelValues("publish")
	s.bus.ObserveBatches(func(n int) { publishes.Observe(float64(n)) })
	s.bus.OnPostError(func(n int, err error) {
		log.WarnContext(context.Background(), "events not published; live subscribers miss them, check redis", slog.Int("events", n), slog.Any("error", err))
	})
	s.hub = events.NewHub(rdb, s.queue.Keys().Events(), hubBuffer, log)
	s.hub.ObserveDispatch(func(d time.Duration) { s.metrics.EventDispatch.Observe(d.Seconds()) })
	s.coord, err = dispatcher.New(dispatcher.Config{
		Secret: []byte(cfg.ServerSecret), PublicURL: cfg.PublicURL, Lease: cfg.Lease, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
	}, s.store, s.queue, s.objects, s.bus, s.metrics, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.metrics.RegisterFleet(s.coord, log)
	s.metrics.RegisterWebhookCircuits(s.store, log)
	s.batches, err = backfill.NewExpander(backfill.Config{
		Period: cfg.BatchPeriod, ChunkSize: cfg.BatchChunk, Storage: s.objects.Storage(), Guard: s.guard,
	}, s.store, s.queue, s.objects, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the connections.
func (s *Server) Close() {
	_ = s.rdb.Close()
	s.hot.Close()
	s.db.Close()
}

// Store is the server's store, for what runs beside it (dev bootstraps its
// organization and polls pools through it).
func (s *Server) Store() *store.Store { return s.store }

// Queue is the server's Redis queue.
func (s *Server) Queue() *queue.Queue { return s.queue }

// Roles says which parts Serve runs and where they listen. A nil listener
// is opened on the configured address (HTTP_ADDR, GRPC_ADDR, METRICS_ADDR).
type Roles struct {
	REST, GRPC, Services      bool
	HTTPLn, GRPCLn, MetricsLn net.Listener
}

// handoff is the coordinator, for the REST API to hand submitted jobs to
// its waiting claims, when this process serves it (r.GRPC); else nil.
func (s *Server) handoff(r Roles) apiserver.Handoff {
	if !r.GRPC {
		return nil
	}
	return s.coord
}

// Listen opens every listener the roles need that is not open yet, on the
// addresses cfg names. On error the listeners it opened are closed again.
func Listen(ctx context.Context, cfg config.Config, r *Roles) error {
	var opened []net.Listener
	open := func(ln *net.Listener, addr, name string) error {
		if *ln != nil {
			return nil
		}
		l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("listen on %s %s: %w", name, addr, err)
		}
		*ln = l
		opened = append(opened, l)
		return nil
	}
	if r.REST {
		if err := open(&r.HTTPLn, cfg.HTTPAddr, "HTTP_ADDR"); err != nil {
			return err
		}
	}
	if r.GRPC {
		if err := open(&r.GRPCLn, cfg.GRPCAddr, "GRPC_ADDR"); err != nil {
			return err
		}
	}
	return open(&r.MetricsLn, cfg.MetricsAddr, "METRICS_ADDR")
}

// Serve runs the roles until ctx ends: the REST API (with live events), the
// coordinator, the background services and the metrics endpoint.
func (s *Server) Serve(ctx context.Context, r Roles) error {
	var (
		api  *apiserver.Server
		keys *apiserver.KeyCache
	)
	if r.REST {
		var (
			limiter *ratelimit.Limiter
			err     error
		)
		if s.cfg.RateLimitEnabled {
			if limiter, err = ratelimit.New(s.cfg.RateLimit, s.rdb, s.queue.Keys(), s.log); err != nil {
				return err
			}
		} else {
			s.log.WarnContext(ctx, "request rate limits are off (MPEGFLOW_RATE_LIMIT_ENABLED=false): any API key or client can send requests as fast as it likes; set it to true in production")
		}
		if keys, err = apiserver.NewKeyCache(s.rdb, s.queue.Keys().KeyInvalidation(), apiserver.KeyCacheConfig{}, s.log); err != nil {
			return err
		}
		sealer, err := contentkey.NewSealer([]byte(s.cfg.ServerSecret))
		if err != nil {
			return err
		}
		uploads, err := s.objects.ConnectSource(ctx)
		if err != nil {
			return err
		}
		api, err = apiserver.New(apiserver.Config{
			BodyLimit: s.cfg.BodyLimit, UploadSource: uploads, Guard: s.guard, Metrics: s.metrics, Hub: s.hub, Batches: s.batches, Planner: s.Plan,
			Limiter: limiter, TrustedProxies: s.cfg.Proxies(), KeyCache: keys, ContentKeys: sealer, Handoff: s.handoff(r),
			Uploads: apiserver.UploadConfig{MultipartThreshold: s.cfg.MultipartThreshold, PartSize: s.cfg.PartSize},
		}, s.store, s.queue, s.objects, s.bus, s.log)
		if err != nil {
			return err
		}
		if err := s.seedPlatformPolicy(ctx, api); err != nil {
			return err
		}
		if origins := s.cfg.ConsoleUploadOrigins; len(origins) > 0 {
			if err := s.objects.AllowBrowserUploads(ctx, origins); err != nil {
				s.log.WarnContext(ctx, "the bucket's CORS rules were not set, so the web console cannot upload files straight to storage; set such a rule yourself (docs/console.md)",
					slog.Any("origins", origins), slog.Any("error", err))
			}
		}
	}
	if err := Listen(ctx, s.cfg, &r); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if r.REST {
		s.log.InfoContext(ctx, "serving REST API", slog.String("addr", r.HTTPLn.Addr().String()))
		g.Go(func() error { return api.Serve(gctx, r.HTTPLn) })
		g.Go(func() error { return s.hub.Run(gctx) })
		g.Go(func() error { return keys.Run(gctx) })
	}
	if r.GRPC {
		s.log.InfoContext(ctx, "serving coordinator", slog.String("addr", r.GRPCLn.Addr().String()))
		g.Go(func() error { return s.coord.Serve(gctx, r.GRPCLn) })
		g.Go(func() error { return s.coord.RunWakeups(gctx) })
	}
	if r.Services {
		svc := dispatcher.NewServices(s.coord, dispatcher.ServicesConfig{
			StaleJobRecovery: s.cfg.StaleJobRecovery, StaleWorkerSweeper: s.cfg.StaleWorkerSweep,
			OfflineWorkerReaper: s.cfg.OfflineWorkerReap, DelayedJobPromoter: s.cfg.DelayedPromote, QueueReconciler: s.cfg.QueueReconcile,
			WebhookExecutor: s.cfg.WebhookPeriod, StaleUploadSweeper: s.cfg.StaleUploadSweep, UploadTTL: s.cfg.UploadTTL,
			ScheduleEvaluator: s.cfg.SchedulePeriod,
			Webhooks: dispatcher.WebhookConfig{
				Timeout: s.cfg.WebhookTimeout, RetryWindow: s.cfg.WebhookRetryWindow,
				CircuitThreshold: s.cfg.WebhookCircuitThreshold, Guard: s.guard,
			},
		})
		g.Go(func() error { return svc.Run(gctx) })
		g.Go(func() error { return s.batches.Run(gctx) })
	}
	s.log.InfoContext(ctx, "serving metrics", slog.String("addr", r.MetricsLn.Addr().String()))
	srv := &http.Server{Handler: promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(r.MetricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve metrics: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		return srv.Close()
	})
	err := g.Wait()
	// The events the last calls posted still go out.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventFlushTimeout)
	defer cancel()
	if ferr := s.bus.Flush(flushCtx); ferr != nil {
		s.log.WarnContext(ctx, "events posted before stopping not all published", slog.Any("error", ferr))
	}
	return err
}

// eventFlushTimeout bounds how long a stopping server waits for its posted
// events' round trips (a round trip takes a millisecond or less; dev
// gives its server 2 s to stop).
const eventFlushTimeout = time.Second

// seedPlatformPolicy stores the configured platform policy when Postgres
// has none yet, then records which pools are outside the stored one. A
// stored policy is never overwritten: SuperAdmins edit it with
// PUT /v1/platform/policy, and a restart must not undo that.
func (s *Server) seedPlatformPolicy(ctx context.Context, api *apiserver.Server) error {
	seeded, err := s.store.SeedPlatformPolicy(ctx, s.cfg.PlatformPolicy)
	if err != nil {
		return fmt.Errorf("seed the platform policy: %w", err)
	}
	if seeded {
		s.log.InfoContext(ctx, "stored the configured platform policy (MPEGFLOW_PLATFORM_POLICY, the chart's platformPolicy); change it with PUT /v1/platform/policy from now on")
	} else {
		s.log.InfoContext(ctx, "a platform policy is already stored and stays; MPEGFLOW_PLATFORM_POLICY only seeds an empty database, use PUT /v1/platform/policy to change it")
	}
	if err := api.RecordPolicyViolations(ctx); err != nil {
		return fmt.Errorf("record pools outside the platform policy: %w", err)
	}
	return nil
}
