package dispatcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/dispatcher/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

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
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := testenv.Postgres(t)
	rdb, prefix := testenv.Redis(t)
	objects, err := objstore.New(testenv.S3(t))
	require.NoError(t, err)
	st := store.New(db)
	b, err := st.BootstrapOrg(t.Context(), "Org", "owner@example.com", auth.Owner)
	require.NoError(t, err)
	return &env{t: t, db: db, store: st, rdb: rdb, queue: queue.New(rdb, queue.NewKeys(prefix)), objects: objects, org: b.Org}
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
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	m := telemetry.New()
	bus := events.NewBus(e.queue, time.Now)
	c, err := New(cfg, e.store, e.queue, e.objects, bus, m, slog.New(slog.DiscardHandler))
	require.NoError(e.t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		require.NoError(e.t, <-done)
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
	kv := []string{"authorization", "Bearer " + w.token, MetadataPool, w.pool}
	if claimToken != "" {
		kv = append(kv, MetadataClaimToken, claimToken)
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
	ctx := context.Background()
	spec := json.RawMessage(`{"packaging":"mp4","renditions":[{"codec":"h264","height":360,"bitrate_kbps":500}]}`)
	ids := make([]uuid.UUID, 0, n)
	for range n {
		u := "https://media.example.com/in.mp4"
		j, _, err := e.store.CreateJob(ctx, store.NewJob{OrgID: e.org.ID, PoolID: pool, Lane: "live", MaxAttempts: 3, InputURL: &u, Spec: spec, Metadata: json.RawMessage(`{}`)})
		require.NoError(e.t, err)
		require.NoError(e.t, e.queue.Push(ctx, pool, "live", j.ID.String(), 0))
		ids = append(ids, j.ID)
	}
	return ids
}

func (e *env) job(id uuid.UUID) store.Job {
	e.t.Helper()
	j, err := e.store.GetJob(context.Background(), e.org.ID, id)
	require.NoError(e.t, err)
	return j
}

var _ clock.WithTicker = clock.RealClock{}
