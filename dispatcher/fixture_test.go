package dispatcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

// loadTests keeps the few wall-clock assertions off the machine while a
// load test (thousands of claims) saturates its cores: load tests hold it
// shared for their whole run, a test measuring a latency holds it
// exclusively around the measured section only.
var loadTests sync.RWMutex

// env is one shared Postgres database, Redis prefix and bucket, on which
// tests start as many coordinator instances as they like.
type env struct {
	t       *testing.T
	db      *pgxpool.Pool
	store   *store.Store
	rdb     *redis.Client
	queue   *queue.Queue
	objects *objstore.Store
	org     store.Organization
	// ownerKey is the API key of org's owner (for apiserver calls).
	ownerKey string
	// log, when set, is the logger of instances started after (default: discard).
	log *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return newEnvWithRedis(t, rdb, prefix)
}

// newPrivateRedisEnv is an env on a redis-server of the test's own, under
// the production key prefix, for tests that wipe Redis.
func newPrivateRedisEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWithRedis(t, testenv.PrivateRedis(t), queue.DefaultPrefix)
}

func newEnvWithRedis(t *testing.T, rdb *redis.Client, prefix string) *env {
	t.Helper()
	db := testenv.Postgres(t)
	objects, err := objstore.New(t.Context(), testenv.S3(t))
	require.NoError(t, err)
	st := store.New(db)
	b, err := st.BootstrapOrg(t.Context(), "Org", "owner@example.com", auth.Owner)
	require.NoError(t, err)
	return &env{t: t, db: db, store: st, rdb: rdb, queue: queue.New(rdb, queue.NewKeys(prefix)), objects: objects, org: b.Org, ownerKey: b.Key}
}

// instance is one running coordinator (gRPC server + its services).
type instance struct {
	coord    *Coordinator
	services *Services
	metrics  *telemetry.Metrics
	addr     string
}

// start runs a coordinator on a loopback port until the test ends.
func (e *env) start(cfg Config) *instance {
	e.t.Helper()
	return e.startOn(e.store, cfg)
}

// startOn is start with the instance's own store (a pool of its own on
// env's database, as another replica has).
func (e *env) startOn(st *store.Store, cfg Config) *instance {
	e.t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	m := telemetry.New()
	bus := events.NewBus(e.queue, time.Now)
	log := e.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := New(cfg, st, e.queue, e.objects, bus, m, log)
	require.NoError(e.t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	woke := make(chan error, 1)
	go func() { woke <- c.RunWakeups(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		require.NoError(e.t, <-done)
		require.NoError(e.t, <-woke)
	})
	return &instance{coord: c, services: NewServices(c, ServicesConfig{}), metrics: m, addr: ln.Addr().String()}
}

// worker is a gRPC client of one pool.
type worker struct {
	client coordinatorv1.CoordinatorClient
	pool   string
	token  string
}

func (e *env) worker(addr, pool string) *worker {
	e.t.Helper()
	return e.workerWithToken(addr, pool, auth.WorkerToken(testSecret, pool))
}

func (e *env) workerWithToken(addr, pool, token string) *worker {
	e.t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(e.t, err)
	e.t.Cleanup(func() { conn.Close() })
	return &worker{client: coordinatorv1.NewCoordinatorClient(conn), pool: pool, token: token}
}

// ctx carries the worker's credentials and, if given, a claim token.
func (w *worker) ctx(parent context.Context, claimToken string) context.Context {
	kv := []string{"authorization", "Bearer " + w.token, coordinatorv1.MetadataPool, w.pool}
	if claimToken != "" {
		kv = append(kv, coordinatorv1.MetadataClaimToken, claimToken)
	}
	return metadata.AppendToOutgoingContext(parent, kv...)
}

func (w *worker) claim(ctx context.Context, pod string, waitMs int32) (*coordinatorv1.Job, error) {
	resp, err := w.client.Claim(w.ctx(ctx, ""), &coordinatorv1.ClaimRequest{Pool: w.pool, Lane: "live", Pod: pod, WaitMs: waitMs})
	if err != nil {
		return nil, err
	}
	return resp.GetJob(), nil
}

// submit creates n queued jobs in pool (through the store, as the API does)
// and pushes their ids.
func (e *env) submit(pool string, n int) []uuid.UUID {
	e.t.Helper()
	ids := make([]uuid.UUID, 0, n)
	for range n {
		ids = append(ids, e.submitSpec(pool, testSpec))
	}
	return ids
}

// submitSpec commits and pushes one queued job with spec.
func (e *env) submitSpec(pool string, spec json.RawMessage) uuid.UUID {
	e.t.Helper()
	u := "https://media.example.com/in.mp4"
	j, _, err := e.store.CreateJob(context.Background(), store.NewJob{OrgID: e.org.ID, PoolID: pool, Lane: "live", MaxAttempts: 3, InputURL: &u, Spec: spec, Metadata: json.RawMessage(`{}`)})
	require.NoError(e.t, err)
	require.NoError(e.t, e.queue.Push(context.Background(), pool, "live", e.tenant(), j.ID.String(), 0))
	return j.ID
}

func (e *env) job(id uuid.UUID) store.Job {
	e.t.Helper()
	j, err := e.store.GetJob(context.Background(), e.org.ID, id)
	require.NoError(e.t, err)
	return j
}

var _ clock.WithTicker = clock.RealClock{}

// newFakeClock starts at a whole second near the real time: Postgres rows
// written with now() stay comparable, and due times of the delayed set
// (whole unix seconds) stay exact.
func newFakeClock() *testingclock.FakeClock {
	return testingclock.NewFakeClock(time.Now().Truncate(time.Second))
}

// fixedJitter makes Config.Backoff deterministic: the factor is 0.8+0.4·j.
func fixedJitter(j float64) func() float64 { return func() float64 { return j } }

// withServices replaces the instance's services with ones configured by cfg.
func (in *instance) withServices(cfg ServicesConfig) *instance {
	in.services = NewServices(in.coord, cfg)
	return in
}

var testSpec = json.RawMessage(`{"packaging":"mp4","renditions":[{"codec":"h264","height":360,"bitrate_kbps":500}]}`)

// create commits n queued jobs of env's organization in pool, several at a
// time, without pushing their ids (tests push them as the scenario needs).
func (e *env) create(pool string, n, maxAttempts int) []uuid.UUID {
	e.t.Helper()
	return e.createJobs(e.org.ID, pool, n, 0, maxAttempts)
}

// createJobs commits n queued live jobs of org in pool, eight at a time,
// without pushing their ids.
func (e *env) createJobs(org uuid.UUID, pool string, n, priority, maxAttempts int) []uuid.UUID {
	e.t.Helper()
	ids := make([]uuid.UUID, n)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			u := "https://media.example.com/in.mp4"
			j, _, err := e.store.CreateJob(ctx, store.NewJob{OrgID: org, PoolID: pool, Lane: "live", Priority: priority, MaxAttempts: maxAttempts,
				InputURL: &u, Spec: testSpec, Metadata: json.RawMessage(`{}`)})
			ids[i] = j.ID
			return err
		})
	}
	require.NoError(e.t, g.Wait())
	return ids
}

// push puts ids onto pool's live list in one round trip; the first id is
// claimed first.
func (e *env) push(pool string, ids ...uuid.UUID) {
	e.t.Helper()
	raw := make([]string, len(ids))
	for i, id := range ids {
		raw[i] = id.String()
	}
	require.NoError(e.t, e.queue.PushMany(context.Background(), pool, "live", e.tenant(), raw))
}

// tenant is env's organization as the queue knows it, with its plan's
// share weight.
func (e *env) tenant() queue.Tenant {
	return queue.Tenant{Org: e.org.ID.String(), Weight: apiv1.ShareWeight(e.org.Plan, e.org.ShareWeight)}
}

// queueLen is the length of pool's live list.
func (e *env) queueLen(pool string) int64 {
	e.t.Helper()
	n, err := e.queue.Len(context.Background(), pool, "live")
	require.NoError(e.t, err)
	return n
}

// pool creates a dedicated pool of env's organization.
func (e *env) pool(name string) store.Pool {
	e.t.Helper()
	set := store.DefaultPoolSettings()
	set.Name = name
	p, err := e.store.CreatePool(context.Background(), e.org.ID, set)
	require.NoError(e.t, err)
	return p
}

// mustClaim claims with wait 0 and requires a job.
func (w *worker) mustClaim(t *testing.T, pod string) *coordinatorv1.Job {
	t.Helper()
	j, err := w.claim(t.Context(), pod, 0)
	require.NoError(t, err)
	require.NotNil(t, j, "%s expected a job", pod)
	return j
}

func (w *worker) heartbeat(ctx context.Context, j *coordinatorv1.Job, progress float64) (*coordinatorv1.HeartbeatResponse, error) {
	return w.client.Heartbeat(w.ctx(ctx, j.GetClaimToken()), &coordinatorv1.HeartbeatRequest{JobId: j.GetId(), Progress: progress})
}

func (w *worker) complete(ctx context.Context, j *coordinatorv1.Job, outputs ...*coordinatorv1.Output) error {
	_, err := w.client.Complete(w.ctx(ctx, j.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: j.GetId(), Outputs: outputs,
		Usage: &coordinatorv1.Usage{EncodeSeconds: 1, OutputSeconds: 10}})
	return err
}

func (w *worker) fail(ctx context.Context, j *coordinatorv1.Job, msg string, retryable bool) (*coordinatorv1.FailResponse, error) {
	return w.client.Fail(w.ctx(ctx, j.GetClaimToken()), &coordinatorv1.FailRequest{JobId: j.GetId(), Error: msg, Retryable: retryable})
}

// series gathers reg and returns the series of name whose labels are
// exactly labels, nil when there is none.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// metricValue gathers reg and returns the value of the counter or gauge name
// whose labels are exactly labels; found is false when there is none.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (value float64, found bool) {
	t.Helper()
	m := series(t, reg, name, labels)
	switch {
	case m == nil:
		return 0, false
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	}
	t.Fatalf("metric %s is neither a counter nor a gauge", name)
	return 0, false
}

// histogramOf is the sample count and sum of a histogram series, zeros if
// it does not exist.
func histogramOf(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (count uint64, sum float64) {
	t.Helper()
	h := series(t, reg, name, labels).GetHistogram() // nil-safe getters
	return h.GetSampleCount(), h.GetSampleSum()
}

// mustMetric is metricValue for a series that must exist.
func mustMetric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metricValue(t, reg, name, labels)
	require.True(t, ok, "no series %s%v", name, labels)
	return v
}
