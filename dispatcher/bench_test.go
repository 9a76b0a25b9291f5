package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/netguard/netguardtest"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// benchRig is the real path: REST API over HTTP, coordinator over gRPC,
// Postgres, Redis and S3, all on loopback.
type benchRig struct {
	restURL string
	apiKey  string
	client  coordinatorv1.CoordinatorClient
	store   *store.Store
	orgID   string
}

func newBenchRig(b *testing.B) *benchRig {
	b.Helper()
	ctx := context.Background()
	db := testenv.Postgres(b)
	rdb, prefix := testenv.Redis(b)
	objects, err := objstore.New(b.Context(), testenv.S3(b))
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(db)
	q := queue.New(rdb, queue.NewKeys(prefix))
	bus := events.NewBus(q, time.Now)
	log := slog.New(slog.DiscardHandler)
	boot, err := st.BootstrapOrg(ctx, "Bench", "bench@example.com", auth.Owner)
	if err != nil {
		b.Fatal(err)
	}
	api, err := apiserver.New(apiserver.Config{Guard: netguard.New(netguard.Config{Resolver: netguardtest.NewPublic()})}, st, q, objects, bus, log)
	if err != nil {
		b.Fatal(err)
	}
	coord, err := New(Config{Secret: testSecret, PollInterval: 5 * time.Millisecond}, st, q, objects, bus, telemetry.New(), log)
	if err != nil {
		b.Fatal(err)
	}
	srvCtx, cancel := context.WithCancel(ctx)
	restLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = api.Serve(srvCtx, restLn) }()
	go func() { defer wg.Done(); _ = coord.Serve(srvCtx, grpcLn) }()
	conn, err := grpc.NewClient(grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); cancel(); wg.Wait() })
	return &benchRig{restURL: "http://" + restLn.Addr().String(), apiKey: boot.Key,
		client: coordinatorv1.NewCoordinatorClient(conn), store: st, orgID: boot.Org.ID.String()}
}

var benchJob = []byte(`{"input":{"url":"https://media.example.com/noop.mp4"},"workflow":"mp4-720p"}`)

func (r *benchRig) submit(ctx context.Context, hc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, "POST", r.restURL+"/v1/jobs", bytes.NewReader(benchJob))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var j struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&j) != nil {
		return fmt.Errorf("submit: status %d", resp.StatusCode)
	}
	return nil
}

// work claims and completes jobs until total have completed, recording
// every successful claim's latency.
func (r *benchRig) work(ctx context.Context, workers int, total int64) ([]time.Duration, error) {
	md := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.WorkerToken(testSecret, "default"), coordinatorv1.MetadataPool, "default")
	var (
		done    atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pod := fmt.Sprintf("bench-%d", i)
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for done.Load() < total {
				start := time.Now()
				resp, err := r.client.Claim(md, &coordinatorv1.ClaimRequest{Pool: "default", Lane: "live", Pod: pod, WaitMs: 200})
				if err != nil {
					mu.Lock()
					firstEr = err
					mu.Unlock()
					return
				}
				if resp.GetJob() == nil {
					continue
				}
				mine = append(mine, time.Since(start))
				jctx := metadata.AppendToOutgoingContext(md, coordinatorv1.MetadataClaimToken, resp.GetJob().GetClaimToken())
				if _, err := r.client.Complete(jctx, &coordinatorv1.CompleteRequest{JobId: resp.GetJob().GetId()}); err != nil {
					mu.Lock()
					firstEr = err
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return lat, firstEr
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "claim-p50-ms")
	b.ReportMetric(q(0.99), "claim-p99-ms")
}

// BenchmarkFullPath submits b.N no-op jobs through the REST endpoint while
// 16 workers claim and complete them over gRPC: end-to-end throughput.
func BenchmarkFullPath(b *testing.B) {
	r := newBenchRig(b)
	ctx := b.Context()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	start := time.Now()
	var (
		wg     sync.WaitGroup
		next   atomic.Int64
		subErr atomic.Value
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := r.submit(ctx, hc); err != nil {
					subErr.Store(err)
					return
				}
			}
		}()
	}
	lat, err := r.work(ctx, 16, int64(b.N))
	wg.Wait()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if e := subErr.Load(); e != nil {
		b.Fatal(e)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	reportLatency(b, lat)
}

// BenchmarkClaimComplete queues b.N jobs first (not timed) and measures 16
// workers claiming and completing them over gRPC.
func BenchmarkClaimComplete(b *testing.B) {
	r := newBenchRig(b)
	ctx := b.Context()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := r.submit(ctx, hc); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	lat, err := r.work(ctx, 16, int64(b.N))
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	reportLatency(b, lat)
}
