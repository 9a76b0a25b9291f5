package dispatcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"google.golang.org/grpc/metadata"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/gcpolicy"
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
	// benchClients are the customers and pods, in this process.
	benchClients
	store *store.Store
	orgID string
	trips *tripCounter
	rdb   *redis.Client
	db    *pgxpool.Pool
	keys  queue.Keys
	// grpcAddr is the coordinator's address.
	grpcAddr string
	metrics  *telemetry.Metrics
	// pgPostmaster is the pid of the Postgres server, 0 if unknown.
	pgPostmaster int
	// profile is the timed part's CPU profile (bench_cpu_test.go), nil
	// until the first usage snapshot starts it.
	profile *cpuProfile
}

// tripCounter counts round trips to Postgres (a query, an Exec, a batch,
// the store's pipeline of hot-path statements, BEGIN and COMMIT each take
// one; a statement's one-time Prepare is counted apart) and to Redis (one
// command or one pipeline each), so the benchmarks report them per job.
// It is installed on the rig's own pool and client only; the product
// never traces.
type tripCounter struct {
	pg, pgPrepare, redis atomic.Int64
}

func (t *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.pg.Add(1)
	return ctx
}
func (t *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (t *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.pg.Add(1)
	return ctx
}
func (t *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (t *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (t *tripCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts a Prepare that went to Postgres (the store's
// pipeline asks for each statement's description every time; pgx answers
// from its cache after the first).
func (t *tripCounter) TracePrepareEnd(_ context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	if !d.AlreadyPrepared {
		t.pgPrepare.Add(1)
	}
}

func (t *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (t *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { t.redis.Add(1); return next(ctx, cmd) }
}
func (t *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { t.redis.Add(1); return next(ctx, cmds) }
}

// usage is a snapshot of the counters, this process's CPU time, the
// CPU time of the rig's Postgres server (postmaster and all its
// children) and the machine's (bench_machine_test.go).
type usage struct {
	pg, pgPrepare, redis int64
	cpu, pgCPU, redisCPU time.Duration
	// groups is what each group-commit group has done, by kind.
	groups  map[string]groupTotals
	machine machineTicks
	// handoffs is the jobs submissions handed to waiting claims.
	handoffs float64
}

func (r *benchRig) usage(b *testing.B) usage {
	var u usage
	// Reading /proc and Redis's INFO is the rig's work, not the servers',
	// and so is the profile's writer, started here.
	asClient(b.Context(), func(context.Context) {
		if r.profile == nil {
			r.profile = startCPUProfile(b)
		}
		cpu, err := processCPU()
		if err != nil {
			b.Fatal(err)
		}
		u = usage{
			pg: r.trips.pg.Load(), pgPrepare: r.trips.pgPrepare.Load(), redis: r.trips.redis.Load(),
			cpu:   cpu,
			pgCPU: r.postgresCPU(), redisCPU: r.redisCPU(b), groups: r.groups(b),
			machine: readMachineTicks(), handoffs: testutil.ToFloat64(r.metrics.ClaimHandoffs),
		}
	})
	return u
}

// groupTotals is what one group-commit group has done so far: its
// batches, its calls and the seconds they waited for their batches, and
// the seconds its batches ran.
type groupTotals struct {
	batches, calls uint64
	waited, ran    float64
}

// groups reads each of the servers' group-commit groups' totals from the
// metrics registry, by kind (mpegflow_group_commit_batch_size's count, a
// statement each for submit, claim, complete and heartbeat, a Redis round
// trip each for push and pop, a pipeline of statements for pipeline;
// mpegflow_group_commit_wait_seconds and _run_seconds). (The rig's event
// bus reports no publish batches: serve's wiring of them is not the
// rig's.)
func (r *benchRig) groups(b *testing.B) map[string]groupTotals {
	families, err := r.metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]groupTotals{}
	for _, f := range families {
		name := f.GetName()
		if name != "mpegflow_group_commit_batch_size" && name != "mpegflow_group_commit_wait_seconds" && name != "mpegflow_group_commit_run_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "kind" {
					continue
				}
				t, h := out[l.GetValue()], m.GetHistogram()
				switch name {
				case "mpegflow_group_commit_batch_size":
					t.batches = h.GetSampleCount()
				case "mpegflow_group_commit_wait_seconds":
					t.calls, t.waited = h.GetSampleCount(), h.GetSampleSum()
				default:
					t.ran = h.GetSampleSum()
				}
				out[l.GetValue()] = t
			}
		}
	}
	return out
}

// processCPU is this process's CPU time so far (user+system).
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// redisCPU is the Redis server's own CPU time (user+system), from INFO
// cpu (the server's, whoever else uses it: the rig has it alone).
func (r *benchRig) redisCPU(b *testing.B) time.Duration {
	info, err := r.rdb.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", line, err)
			}
			total += time.Duration(sec * float64(time.Second))
		}
	}
	return total
}

// report turns the difference between two snapshots into per-job metrics.
// cpu-us/job is the whole benchmark process: the API, the coordinator, and
// also the HTTP and gRPC clients that stand in for customers and pods
// unless they run in a process of their own (bench_apart_test.go);
// server-cpu-us/job is the servers' part of it, by the timed part's CPU
// profile (bench_cpu_test.go), and api-cpu-us/job and
// coordinator-cpu-us/job are the parts of that sampled in each server's
// goroutines (the rest is the runtime's own work and the pools'
// background goroutines). coordinator-cpu-us/job is what the claims and
// completions cost the coordinator (the cycle design 0019's inventory
// counts), without the submissions' REST path. machine-busy-% and
// steal-ms are the whole machine's (bench_machine_test.go). For each
// group-commit group (by kind: submit, push, pop, claim, complete,
// heartbeat, pipeline), <kind>-batches/job is its batches a job,
// <kind>-wait-ms the mean time a call waited for its batch to start, and
// <kind>-run-ms the mean time a batch ran: where a job's latency goes
// between the statements. handoff-% is the share of jobs whose
// submission handed them straight to a waiting claim (Coordinator.Offer).
func (r *benchRig) report(b *testing.B, from usage) {
	to := r.usage(b)
	n := float64(b.N)
	b.ReportMetric(float64(to.pg-from.pg)/n, "pg-rt/job")
	b.ReportMetric(float64(to.pgPrepare-from.pgPrepare)/n, "pg-prepare/job")
	b.ReportMetric(float64(to.redis-from.redis)/n, "redis-rt/job")
	cpu := float64((to.cpu - from.cpu).Microseconds()) / n
	b.ReportMetric(cpu, "cpu-us/job")
	if shares, ok := r.profile.roleShares(b); ok {
		b.ReportMetric(cpu*(1-shares[roleClient]), "server-cpu-us/job")
		b.ReportMetric(cpu*shares[roleAPI], "api-cpu-us/job")
		b.ReportMetric(cpu*shares[roleCoordinator], "coordinator-cpu-us/job")
	}
	if to.pgCPU > 0 {
		b.ReportMetric(float64((to.pgCPU-from.pgCPU).Microseconds())/n, "pg-cpu-us/job")
	}
	b.ReportMetric(float64((to.redisCPU-from.redisCPU).Microseconds())/n, "redis-cpu-us/job")
	b.ReportMetric(100*(to.handoffs-from.handoffs)/n, "handoff-%")
	for kind, t := range to.groups {
		f := from.groups[kind]
		if d := t.batches - f.batches; d > 0 {
			b.ReportMetric(float64(d)/n, kind+"-batches/job")
			b.ReportMetric(1000*(t.ran-f.ran)/float64(d), kind+"-run-ms")
		}
		if d := t.calls - f.calls; d > 0 {
			b.ReportMetric(1000*(t.waited-f.waited)/float64(d), kind+"-wait-ms")
		}
	}
	reportMachine(b, from.machine, to.machine)
}

// postgresCPU sums user+system CPU of the rig's Postgres server processes
// (the postmaster's children: backends, WAL writer, checkpointer …) from
// /proc. Zero when it cannot tell (another machine, another user's server).
func (r *benchRig) postgresCPU() time.Duration {
	if r.pgPostmaster == 0 {
		return 0
	}
	var total time.Duration
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, cpu, ok := procStat(pid)
		if ok && (ppid == r.pgPostmaster || pid == r.pgPostmaster) {
			total += cpu
		}
	}
	return total
}

// procStat reads a process's parent and CPU time (utime+stime) from
// /proc/PID/stat; the clock tick is 100 Hz on Linux.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * 10 * time.Millisecond, true
}

func newBenchRig(b *testing.B) *benchRig {
	b.Helper()
	ctx := context.Background()
	// The collector as `mpegflow serve` sets it (gcpolicy; GOGC in the
	// environment overrides it, GOGC=100 for Go's default), restored
	// after the benchmark. The rig's clients have the same setting,
	// whether they share the process or have their own.
	prevGC := gcpolicy.Current()
	gcpolicy.Apply(ctx, nil, slog.New(slog.DiscardHandler))
	b.Cleanup(func() { gcpolicy.Restore(prevGC) })
	trips := &tripCounter{}
	pgCfg, err := pgxpool.ParseConfig(testenv.DatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	pgCfg.MaxConns = 20 // as store.Open
	pgCfg.AfterConnect = store.AfterConnect
	pgCfg.ConnConfig.Tracer = trips
	db, err := pgxpool.NewWithConfig(ctx, pgCfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	// The hot path's pool, as `mpegflow serve` opens it (store.OpenHotPath),
	// unless MPEGFLOW_BENCH_HOT_PATH=off runs every statement on the one
	// pool, as before.
	st := store.New(db)
	if os.Getenv("MPEGFLOW_BENCH_HOT_PATH") != "off" {
		hotCfg := pgCfg.Copy()
		store.HotPathConfig(hotCfg.ConnConfig)
		hot, err := pgxpool.NewWithConfig(ctx, hotCfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(hot.Close)
		st = st.WithHotPath(hot)
	}
	rdb, prefix := testenv.Redis(b)
	rdb.AddHook(trips)
	objects, err := objstore.New(b.Context(), testenv.S3(b))
	if err != nil {
		b.Fatal(err)
	}
	q := queue.New(rdb, queue.NewKeys(prefix))
	bus := events.NewBus(q, time.Now)
	log := slog.New(slog.DiscardHandler)
	boot, err := st.BootstrapOrg(ctx, "Bench", "bench@example.com", auth.Owner)
	if err != nil {
		b.Fatal(err)
	}
	// The organization's own pool, whose pods run job after job
	// (jobs_per_pod), as a platform's chunk and thumbnail pools would.
	set := store.DefaultPoolSettings()
	set.Name, set.JobsPerPod = "bench", 100
	pool, err := st.CreatePool(ctx, boot.Org.ID, set)
	if err != nil {
		b.Fatal(err)
	}
	// As `mpegflow serve` wires it: API keys cached, invalidated over Redis.
	keys, err := apiserver.NewKeyCache(rdb, q.Keys().KeyInvalidation(), apiserver.KeyCacheConfig{}, log)
	if err != nil {
		b.Fatal(err)
	}
	// One registry for both servers, as `mpegflow serve` has: the rig reads
	// the group-commit groups' batches, waits and runs from it (groups).
	metrics := telemetry.New()
	st.ObservePipelines(metrics.GroupCommit("pipeline"))
	// The event hub, as serve runs one in every API replica: it receives
	// every event on its Redis subscription (three a job) to fan them out
	// to WebSocket clients, whether it has any or not.
	// MPEGFLOW_BENCH_HUB=off leaves it out (the rig before session 25).
	var hub *events.Hub
	if os.Getenv("MPEGFLOW_BENCH_HUB") != "off" {
		hub = events.NewHub(rdb, q.Keys().Events(), 256, log)
	}
	// The production poll interval (200 ms): waiting claims are woken by
	// pushes (RunWakeups), as in mpegflow serve. Group commit as in
	// production, unless MPEGFLOW_BENCH_GROUP_COMMIT=off makes every claim
	// and completion its own statement (to measure what it buys), or =N
	// runs N statements of each kind at once (GroupCommitInFlight).
	cfg := Config{Secret: testSecret}
	switch v := os.Getenv("MPEGFLOW_BENCH_GROUP_COMMIT"); v {
	case "", "on":
	case "off":
		cfg.GroupCommitMaxBatch = 1
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("MPEGFLOW_BENCH_GROUP_COMMIT=%q: want on, off or a number of statements in flight", v)
		}
		cfg.GroupCommitInFlight = n
	}
	// MPEGFLOW_BENCH_LINGER sets the group-commit linger,
	// MPEGFLOW_BENCH_GATHER how long a completion batch may gather
	// (CompleteGather), and MPEGFLOW_BENCH_SPILL how long claims wait
	// before a second statement runs (GroupCommitSpill; 0: never wait).
	benchWait(b, "MPEGFLOW_BENCH_LINGER", &cfg.GroupCommitLinger)
	benchWait(b, "MPEGFLOW_BENCH_GATHER", &cfg.CompleteGather)
	benchWait(b, "MPEGFLOW_BENCH_SPILL", &cfg.GroupCommitSpill)
	coord, err := New(cfg, st, q, objects, bus, metrics, log)
	if err != nil {
		b.Fatal(err)
	}
	// Submissions hand their jobs to claims waiting in the process, as in
	// mpegflow serve, unless MPEGFLOW_BENCH_HANDOFF=off pushes every one;
	// MPEGFLOW_BENCH_RESERVE=off hands them over only after their
	// statement, to be claimed by the claim's own (session 38's build).
	var handoff apiserver.Handoff = coord
	switch {
	case os.Getenv("MPEGFLOW_BENCH_HANDOFF") == "off":
		handoff = nil
	case os.Getenv("MPEGFLOW_BENCH_RESERVE") == "off":
		handoff = offerOnly{coord}
	}
	// MPEGFLOW_BENCH_SUBMIT_GATHER sets how long submissions may gather
	// (apiserver.Config.SubmitGather; 0: never, as before session 40).
	apiCfg := apiserver.Config{Guard: netguard.New(netguard.Config{Resolver: netguardtest.NewPublic()}), KeyCache: keys, Metrics: metrics, Hub: hub,
		Handoff: handoff}
	benchWait(b, "MPEGFLOW_BENCH_SUBMIT_GATHER", &apiCfg.SubmitGather)
	api, err := apiserver.New(apiCfg, st, q, objects, bus, log)
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
	wg.Add(4)
	if hub != nil {
		wg.Add(1)
	}
	// Each server's goroutines carry its role, for the CPU split.
	serve := func(role string, run func(context.Context) error) {
		go asRole(srvCtx, role, func(ctx context.Context) { defer wg.Done(); _ = run(ctx) })
	}
	serve(roleAPI, keys.Run)
	serve(roleAPI, func(ctx context.Context) error { return api.Serve(ctx, restLn) })
	serve(roleCoordinator, func(ctx context.Context) error { return coord.Serve(ctx, grpcLn) })
	serve(roleCoordinator, coord.RunWakeups)
	if hub != nil {
		serve(roleAPI, hub.Run)
	}
	// The pods' connections: their goroutines are the clients' (asClient).
	var (
		clients  []coordinatorv1.CoordinatorClient
		closeAll func()
	)
	asClient(ctx, func(context.Context) {
		clients, closeAll, err = podClients(grpcLn.Addr().String(), benchWorkers(b), benchSharedConn(b))
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeAll(); cancel(); wg.Wait() })
	r := &benchRig{grpcAddr: grpcLn.Addr().String(), metrics: metrics, store: st, orgID: boot.Org.ID.String(), trips: trips, rdb: rdb, db: db, keys: q.Keys()}
	r.benchClients = benchClients{restURL: "http://" + restLn.Addr().String(), apiKey: boot.Key, pool: pool.ID, job: benchJob(pool.ID),
		clients: clients, stall: benchStallAfter(b), whereStalled: r.stallReport}
	var backend int
	if err := db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err == nil {
		r.pgPostmaster, _, _ = procStat(backend)
	}
	return r
}

// warmUp submits and works a few hundred jobs with the benchmark's pods
// before its timed part, so that what is timed is a coordinator in its
// steady state: the pools' connections open, the statements prepared and
// planned, the gRPC streams up. Without it the first ~250 ms of jobs in
// BenchmarkClaimAtRate waited 40–220 ms each (every job slower than 40 ms
// of a 2,000-job run at 200/s was in its first second), which was its
// whole p99.
func (r *benchRig) warmUp(b *testing.B) {
	if err := r.warm(b.Context(), benchWorkers(b), benchSubmitters(b)); err != nil {
		b.Fatal(err)
	}
}

// customersClient is the customers' HTTP client (customers), its
// connections closed when the benchmark ends, before the rig stops its
// servers (goleak).
func customersClient(b *testing.B, conns int) *http.Client {
	hc := customers(conns)
	b.Cleanup(hc.CloseIdleConnections)
	return hc
}

// benchStallAfter is how long work waits without a job done before it
// gives up with what it finds (watch): a minute, which a healthy run never
// pauses (pods long-poll 20 s at most), or MPEGFLOW_BENCH_STALL.
func benchStallAfter(b *testing.B) time.Duration {
	v := os.Getenv("MPEGFLOW_BENCH_STALL")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("MPEGFLOW_BENCH_STALL=%q: want a positive duration such as 30s", v)
	}
	return d
}

// stallReport says where the jobs of a stalled run are: by status in
// Postgres, those left running, the live lane's length in Redis, and a
// file with every goroutine's stack.
func (r *benchRig) stallReport(ctx context.Context) string {
	ctx = context.WithoutCancel(ctx)
	var (
		status, worker       string
		id                   uuid.UUID
		n, attempts, started int
	)
	out := r.stallRows(ctx, nil, "jobs by status",
		`SELECT status, count(*) FROM jobs WHERE org_id = $1 GROUP BY status ORDER BY status`,
		[]any{&status, &n}, func() string { return fmt.Sprintf("%s %d", status, n) })
	// A job left running with every pod polling was claimed for a pod that
	// never got it: which pod, which attempt, how many job.started events.
	out = r.stallRows(ctx, out, "running jobs",
		`SELECT j.id, COALESCE(j.worker_id, 'none'), j.attempts,
			(SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.type = 'job.started')
		FROM jobs j WHERE j.org_id = $1 AND j.status = 'running' ORDER BY j.id LIMIT 5`,
		[]any{&id, &worker, &attempts, &started}, func() string {
			return fmt.Sprintf("running %s worker %s attempt %d started %d times", id, worker, attempts, started)
		})
	lane, err := r.rdb.LLen(ctx, r.keys.Queue(r.pool, "live")).Result()
	out = append(out, fmt.Sprintf("in the lane %d (%v)", lane, err))
	out = append(out, goroutinesFile())
	return strings.Join(out, ", ")
}

// goroutinesFile writes every goroutine's stack to a new temporary file
// and says which, or what went wrong.
func goroutinesFile() string {
	f, err := os.CreateTemp("", "mpegflow-bench-stall-*.txt")
	if err != nil {
		return fmt.Sprintf("goroutines: %v", err)
	}
	if err := cmp.Or(pprof.Lookup("goroutine").WriteTo(f, 2), f.Close()); err != nil {
		return fmt.Sprintf("goroutines in %s: %v", f.Name(), err)
	}
	return "goroutines in " + f.Name()
}

// stallRows appends to out a line (line, after each row is scanned into
// dest) for every row of query, run for the rig's organization, or what
// went wrong.
func (r *benchRig) stallRows(ctx context.Context, out []string, what, query string, dest []any, line func() string) []string {
	rows, err := r.db.Query(ctx, query, r.orgID)
	if err == nil {
		_, err = pgx.ForEachRow(rows, dest, func() error {
			out = append(out, line())
			return nil
		})
	}
	if err != nil {
		out = append(out, fmt.Sprintf("%s: %v", what, err))
	}
	return out
}

// benchWait sets *d from the duration in the environment variable name,
// if set; 0 there means never (a negative Config duration).
func benchWait(b *testing.B, name string, d *time.Duration) {
	v := os.Getenv(name)
	if v == "" {
		return
	}
	w, err := time.ParseDuration(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, v, err)
	}
	*d = cmp.Or(w, -1)
}

// benchWorkers is how many pods claim and complete at once: 16, or
// MPEGFLOW_BENCH_WORKERS.
func benchWorkers(b *testing.B) int { return benchCount(b, "MPEGFLOW_BENCH_WORKERS", 16) }

// benchSharedConn reports MPEGFLOW_BENCH_CONNS: shared (the default: one
// connection for every pod) or pod (one each).
func benchSharedConn(b *testing.B) bool {
	switch v := os.Getenv("MPEGFLOW_BENCH_CONNS"); v {
	case "", "shared":
		return true
	case "pod":
		return false
	default:
		b.Fatalf("MPEGFLOW_BENCH_CONNS=%q: want pod or shared", v)
		return false
	}
}

// benchSubmitters is how many customers submit at once over REST: 8, or
// MPEGFLOW_BENCH_SUBMITTERS.
func benchSubmitters(b *testing.B) int { return benchCount(b, "MPEGFLOW_BENCH_SUBMITTERS", 8) }

func benchCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// serverProcs gives the servers MPEGFLOW_BENCH_SERVER_PROCS Ps
// (runtime.GOMAXPROCS) for the benchmark, when set: the Ps a server pod
// of the chart gets from its CPU limit, whatever the machine's cores.
// Only with the clients in a process of their own
// (MPEGFLOW_BENCH_CLIENTS=process), which keeps the runtime's default.
func serverProcs(b *testing.B) {
	if os.Getenv("MPEGFLOW_BENCH_SERVER_PROCS") == "" {
		return
	}
	if !clientsApart(b) {
		b.Fatal("MPEGFLOW_BENCH_SERVER_PROCS needs MPEGFLOW_BENCH_CLIENTS=process: inline, the clients would share the servers' Ps")
	}
	prev := runtime.GOMAXPROCS(benchCount(b, "MPEGFLOW_BENCH_SERVER_PROCS", 0))
	b.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// benchClaimWaitMs is the pods' long poll: the encoder's default
// MPEGFLOW_CLAIM_WAIT.
const benchClaimWaitMs = 20_000

// podLatency is how long the pods' calls took: each Claim that answered
// a job (its long poll included) and each Complete (the next claim it
// carries included).
type podLatency struct{ Claims, Completes []time.Duration }

// reportLatency reports the pods' claim-p50/p99-ms and
// complete-p50/p99-ms (a Complete waits for its next claim, and a
// completion that gathers waits for company).
func reportLatency(b *testing.B, lat podLatency) {
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"claim", lat.Claims}, {"complete", lat.Completes}} {
		if len(m.d) == 0 {
			continue
		}
		slices.Sort(m.d)
		b.ReportMetric(quantileMs(m.d, 0.50), m.name+"-p50-ms")
		b.ReportMetric(quantileMs(m.d, 0.99), m.name+"-p99-ms")
	}
}

// quantileMs is the p-quantile of sorted durations in milliseconds.
func quantileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))].Microseconds()) / 1000
}

// BenchmarkFullPath submits b.N no-op jobs through the REST endpoint while
// the pods (benchWorkers) claim and complete them over gRPC: end-to-end
// throughput.
func BenchmarkFullPath(b *testing.B) {
	r := newBenchRig(b)
	r.warmUp(b)
	ctx := b.Context()
	hc := customersClient(b, benchSubmitters(b))
	b.ResetTimer()
	from := r.usage(b)
	start := time.Now()
	submitted := r.submitAll(ctx, hc, b.N, benchSubmitters(b))
	lat, err := r.work(ctx, benchWorkers(b), int64(b.N), nil)
	subErr := <-submitted
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if subErr != nil {
		b.Fatal(subErr)
	}
	r.report(b, from)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	reportLatency(b, lat)
}

// BenchmarkClaimComplete queues b.N jobs first (not timed) and measures the
// pods (benchWorkers) claiming and completing them over gRPC.
func BenchmarkClaimComplete(b *testing.B) {
	r := newBenchRig(b)
	r.warmUp(b)
	ctx := b.Context()
	hc := customersClient(b, benchSubmitters(b))
	if err := <-r.submitAll(ctx, hc, b.N, benchSubmitters(b)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	from := r.usage(b)
	start := time.Now()
	lat, err := r.work(ctx, benchWorkers(b), int64(b.N), nil)
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	r.report(b, from)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	reportLatency(b, lat)
}

// BenchmarkHeartbeat measures one held job's heartbeats over gRPC, one at a
// time: the cost of a lease extension (pg-rt/job and the others read "per
// heartbeat" here).
func BenchmarkHeartbeat(b *testing.B) {
	r := newBenchRig(b)
	ctx := b.Context()
	if err := r.submit(ctx, customersClient(b, 1)); err != nil {
		b.Fatal(err)
	}
	md := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.WorkerToken(testSecret, r.pool), coordinatorv1.MetadataPool, r.pool)
	resp, err := r.clients[0].Claim(md, &coordinatorv1.ClaimRequest{Pool: r.pool, Lane: "live", Pod: "bench-hb", WaitMs: 2000})
	if err != nil || resp.GetJob() == nil {
		b.Fatalf("claim: %v (job %v)", err, resp.GetJob())
	}
	jctx := metadata.AppendToOutgoingContext(md, coordinatorv1.MetadataClaimToken, resp.GetJob().GetClaimToken())
	b.ResetTimer()
	from := r.usage(b)
	asClient(jctx, func(jctx context.Context) {
		for i := range b.N {
			if _, err := r.clients[0].Heartbeat(jctx, &coordinatorv1.HeartbeatRequest{JobId: resp.GetJob().GetId(), Progress: float64(i) / float64(b.N)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	r.report(b, from)
}

// BenchmarkClaimAtRate offers jobs at a fixed rate through the REST
// endpoint (open loop: each submission is sent at its scheduled time
// whatever the earlier ones are doing, up to maxOffered in flight) while the
// pods (benchWorkers) claim and complete them over gRPC, and reports how long a job
// waits between its scheduled submission and the return of the Claim
// that hands it to a pod: dispatch-p50/p99-ms (measured from the
// schedule, so a submitter falling behind counts against the system, not
// in its favour). Its parts: offer-p99-ms, the clients' own delay in
// sending a submission; submit-p99-ms, the REST submission; queued-p99-ms,
// from the submission's answer to the claim's return (the parts' tails
// need not add up to dispatch's); late-ms is
// how far behind schedule the last submission was sent (≫ 0: the
// machine could not even offer the rate). claim-p99-ms is the Claim RPC,
// which includes the long-poll wait of idle workers and so says little
// below saturation. The target is dispatch p99 ≤ 20 ms at 1,000
// jobs/s; 200 jobs/s shows the latency below this machine's saturation.
// MPEGFLOW_BENCH_RATES (comma-separated jobs/s, default 200,1000) sweeps
// other rates, to find the highest at which the target holds.
// When jobs/s stays under the rate the system is saturated: jobs queue up
// and dispatch latency grows with the run's length, so compare runs of
// the same -benchtime.
//
// The customers and pods run in the benchmark's process, as in the other
// benchmarks, unless MPEGFLOW_BENCH_CLIENTS=process (bench_apart_test.go).
// MPEGFLOW_BENCH_TRACE=FILE writes each job's times to FILE (writeTrace);
// each run rewrites it, so the last of the process's runs is kept (one rate
// a process for a trace of each).
func BenchmarkClaimAtRate(b *testing.B) {
	for _, rate := range benchRates(b) {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchClaimAtRate(b, rate) })
	}
}

// benchRates is BenchmarkClaimAtRate's offered rates:
// MPEGFLOW_BENCH_RATES, or 200 and 1,000 jobs/s.
func benchRates(b *testing.B) []int {
	v := os.Getenv("MPEGFLOW_BENCH_RATES")
	if v == "" {
		return []int{200, 1000}
	}
	var rates []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1_000_000 {
			b.Fatalf("MPEGFLOW_BENCH_RATES=%q: want jobs per second (1 to 1,000,000), comma-separated", v)
		}
		rates = append(rates, n)
	}
	return rates
}

func benchClaimAtRate(b *testing.B, rate int) {
	serverProcs(b)
	r := newBenchRig(b)
	timed := r.clientsAtRate(b, rate)
	pace, chase := measurePace()
	b.ResetTimer()
	from := r.usage(b)
	run, err := timed()
	if err != nil {
		b.Fatal(err)
	}
	r.report(b, from)
	b.ReportMetric(float64(b.N)/run.Elapsed.Seconds(), "jobs/s")
	b.ReportMetric(quantileMs(run.Dispatch, 0.50), "dispatch-p50-ms")
	b.ReportMetric(quantileMs(run.Dispatch, 0.99), "dispatch-p99-ms")
	b.ReportMetric(quantileMs(run.Submit, 0.99), "submit-p99-ms")
	b.ReportMetric(quantileMs(run.Queued, 0.99), "queued-p99-ms")
	b.ReportMetric(quantileMs(run.Offer, 0.99), "offer-p99-ms")
	b.ReportMetric(float64(run.Late.Microseconds())/1000, "late-ms")
	b.ReportMetric(float64(pace.Microseconds())/1000, "pace-ms")
	b.ReportMetric(chase, "memory-ns")
	if run.CPU > 0 {
		b.ReportMetric(float64(run.CPU.Microseconds())/float64(b.N), "client-cpu-us/job")
	}
	reportLatency(b, run.Pods)
}

// offerOnly is the coordinator as a Handoff that reserves no claim: jobs
// are handed over after their statement only (MPEGFLOW_BENCH_RESERVE=off).
type offerOnly struct{ *Coordinator }

func (offerOnly) Reserve(context.Context, string, string, string) (*store.JobClaim, func(store.Job, bool, func()) bool) {
	return nil, nil
}
