package localexec

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

func newFakeClock() *testingclock.FakeClock {
	return testingclock.NewFakeClock(time.Now().Truncate(time.Second))
}

// fakeEncoder is a stand-in for `mpegflow encode`. It records its
// environment in OUT/<pod>.env once its SIGTERM handling is in place, becomes ready (writes the readiness file,
// as the encoder does once it holds a claim) when OUT/claim-<pod> appears,
// exits when OUT/exit-<pod> appears, and on SIGTERM records OUT/<pod>.term
// and exits — unless OUT/ignore-term exists, then it ignores SIGTERM.
const fakeEncoder = `#!/bin/sh
out=%q
pod=$MPEGFLOW_POD_NAME
if [ -e "$out/ignore-term" ]; then
	trap '' TERM
else
	trap 'echo term > "$out/$pod.term"; exit 0' TERM
fi
env > "$out/$pod.env.tmp" && mv "$out/$pod.env.tmp" "$out/$pod.env"
while :; do
	[ -e "$out/claim-$pod" ] && : > "$MPEGFLOW_SCRATCH_DIR/claimed"
	[ -e "$out/exit-$pod" ] && exit 0
	sleep 0.02
done
`

// executorEnv is one executor over a fresh database and Redis prefix, with
// a fake clock and a fake encoder.
type executorEnv struct {
	t      *testing.T
	store  *store.Store
	rdb    *redis.Client
	queue  *queue.Queue
	clock  *testingclock.FakeClock
	exec   *Executor
	out    string // where the fake encoder writes
	rounds chan struct{}
	cancel context.CancelFunc
	done   chan error
}

func newExecutorEnv(t *testing.T, cfg Config) *executorEnv {
	t.Helper()
	db := testenv.Postgres(t)
	rdb, prefix := testenv.Redis(t)
	e := &executorEnv{
		t: t, store: store.New(db), rdb: rdb, queue: queue.New(rdb, queue.NewKeys(prefix)),
		clock: newFakeClock(), out: t.TempDir(), rounds: make(chan struct{}, 100),
	}
	script := filepath.Join(t.TempDir(), "encode.sh")
	require.NoError(t, os.WriteFile(script, fmt.Appendf(nil, fakeEncoder, e.out), 0o755))
	cfg.Coordinator = "127.0.0.1:50051"
	cfg.Secret = testSecret
	cfg.Dir = t.TempDir()
	cfg.Binary = script
	cfg.Tick = time.Second
	cfg.Clock = e.clock
	x, err := New(cfg, e.store, e.queue, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	x.onRound = func() { e.rounds <- struct{}{} }
	e.exec = x
	// Poll every second (every tick) unless a test says otherwise.
	e.setPool(func(s *store.PoolSettings) { s.PollingIntervalSeconds = 1 })
	return e
}

// setPool edits the shared default pool.
func (e *executorEnv) setPool(edit func(*store.PoolSettings)) {
	e.t.Helper()
	_, err := e.store.UpdatePool(context.Background(), store.PoolScope{Shared: true}, store.DefaultPoolID, func(s *store.PoolSettings) error {
		edit(s)
		return nil
	})
	require.NoError(e.t, err)
}

func (e *executorEnv) push(lane string, n int) {
	e.t.Helper()
	for i := range n {
		require.NoError(e.t, e.queue.Push(context.Background(), store.DefaultPoolID, lane, queue.Tenant{Org: "org-1", Weight: 1}, fmt.Sprintf("job-%s-%d-%d", lane, time.Now().UnixNano(), i), 0))
	}
}

// run starts the executor and waits for its first round.
func (e *executorEnv) run() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.exec.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		// Let a test that left processes ignoring SIGTERM finish too.
		for {
			select {
			case <-e.done:
				return
			case <-time.After(50 * time.Millisecond):
				e.clock.Step(time.Minute)
			}
		}
	})
	e.waitRound()
}

func (e *executorEnv) waitRound() {
	e.t.Helper()
	select {
	case <-e.rounds:
	case <-time.After(30 * time.Second):
		e.t.Fatal("no scaling round within 30 s")
	}
}

// tick advances the clock by one poll and waits for the round.
func (e *executorEnv) tick() {
	e.t.Helper()
	e.clock.Step(time.Second)
	e.waitRound()
}

func (e *executorEnv) count(lane string) int {
	n := 0
	for _, p := range e.exec.Processes() {
		if lane == "" || p.Lane == lane {
			n++
		}
	}
	return n
}

// stop cancels Run and waits for it to return.
func (e *executorEnv) stop() {
	e.t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		require.NoError(e.t, err)
		e.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		e.t.Fatal("Run did not return within 30 s of cancel")
	}
}

func (e *executorEnv) claim(p Process) {
	e.t.Helper()
	require.NoError(e.t, os.WriteFile(filepath.Join(e.out, "claim-"+p.Pod), nil, 0o644))
	require.Eventually(e.t, func() bool {
		_, err := os.Stat(filepath.Join(p.ScratchDir, "claimed"))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "fake encoder %s did not become ready", p.Pod)
}

func TestLocalExecutorStartsQueueLengthWithinCaps(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		queued, maxReplicas, maxProcesses, want int
	}{
		"queue length":   {queued: 2, maxReplicas: 5, maxProcesses: 10, want: 2},
		"pool maximum":   {queued: 5, maxReplicas: 3, maxProcesses: 10, want: 3},
		"global cap":     {queued: 5, maxReplicas: 10, maxProcesses: 2, want: 2},
		"empty queue":    {queued: 0, maxReplicas: 10, maxProcesses: 10, want: 0},
		"cap below pool": {queued: 8, maxReplicas: 4, maxProcesses: 3, want: 3},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newExecutorEnv(t, Config{MaxProcesses: tc.maxProcesses})
			e.setPool(func(s *store.PoolSettings) { s.MaxReplicas = tc.maxReplicas; s.BackfillMaxReplicas = 0 })
			e.push("live", tc.queued)
			e.run()
			assert.Equal(t, tc.want, e.count("live"))
			// Nothing changed: later polls start no more.
			e.tick()
			e.tick()
			assert.Equal(t, tc.want, e.count("live"))
		})
	}
}

// TestLocalExecutorCountsPendingOnce is KEDA's `accurate` strategy: a process
// that has not claimed yet stands for one queued job; once it claims (its job
// left the list), only new work starts new processes.
func TestLocalExecutorCountsPendingOnce(t *testing.T) {
	t.Parallel()
	e := newExecutorEnv(t, Config{MaxProcesses: 10})
	e.setPool(func(s *store.PoolSettings) { s.MaxReplicas = 10 })
	e.push("live", 2)
	e.run()
	require.Equal(t, 2, e.count("live"))

	e.tick()
	assert.Equal(t, 2, e.count("live"), "two pending processes already stand for the two queued jobs")

	// One process claims: its job leaves the list, it is no longer pending.
	ps := e.exec.Processes()
	require.NoError(t, e.rdb.RPop(context.Background(), e.queue.Keys().Queue(store.DefaultPoolID, "live")).Err())
	e.claim(ps[0])
	e.tick()
	assert.Equal(t, 2, e.count("live"), "queue 1, pending 1: nothing to start")
	ready := 0
	for _, p := range e.exec.Processes() {
		if p.Ready {
			ready++
		}
	}
	assert.Equal(t, 1, ready)

	// Three new jobs: queue 4, pending 1 → 3 more.
	e.push("live", 3)
	e.tick()
	assert.Equal(t, 5, e.count("live"))

	// A process that exits is reaped and its scratch directory removed.
	require.NoError(t, os.WriteFile(filepath.Join(e.out, "exit-"+ps[0].Pod), nil, 0o644))
	require.Eventually(t, func() bool { return e.count("live") == 4 }, 10*time.Second, 10*time.Millisecond)
	assert.NoDirExists(t, ps[0].ScratchDir)
}

func TestLocalExecutorPausedPoolStartsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("status paused", func(t *testing.T) {
		t.Parallel()
		e := newExecutorEnv(t, Config{MaxProcesses: 10})
		_, err := e.store.SetPoolStatus(ctx, store.PoolScope{Shared: true}, store.DefaultPoolID, "paused")
		require.NoError(t, err)
		e.push("live", 3)
		e.push("backfill", 3)
		e.run()
		e.tick()
		assert.Zero(t, e.count(""))
		_, err = e.store.SetPoolStatus(ctx, store.PoolScope{Shared: true}, store.DefaultPoolID, "active")
		require.NoError(t, err)
		e.tick()
		assert.Equal(t, 6, e.count(""), "resumed: the queued jobs get their processes")
	})
	t.Run("pause key in redis", func(t *testing.T) {
		t.Parallel()
		e := newExecutorEnv(t, Config{MaxProcesses: 10})
		require.NoError(t, e.queue.SetPaused(ctx, store.DefaultPoolID, true))
		e.push("live", 3)
		e.run()
		e.tick()
		assert.Zero(t, e.count(""))
	})
}

func TestLocalExecutorBackfillLaneHasItsOwnCap(t *testing.T) {
	t.Parallel()
	e := newExecutorEnv(t, Config{MaxProcesses: 10})
	e.setPool(func(s *store.PoolSettings) { s.MaxReplicas = 5; s.BackfillMaxReplicas = 2 })
	e.push("live", 1)
	e.push("backfill", 4)
	e.run()
	assert.Equal(t, 1, e.count("live"))
	assert.Equal(t, 2, e.count("backfill"))
	for _, p := range e.exec.Processes() {
		if p.Lane == "backfill" {
			assert.Regexp(t, `^mpegflow-pool-default-backfill-[a-z2-7]{8}$`, p.Pod)
		}
	}
}

// TestLocalExecutorPollsAtThePoolsInterval: a pool is polled every
// polling_interval_seconds, as KEDA does, unless PollInterval overrides it.
func TestLocalExecutorPollsAtThePoolsInterval(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		override time.Duration
		want     []int // processes after each one-second tick
	}{
		"pool's interval": {want: []int{0, 0, 1}},
		"override":        {override: time.Second, want: []int{1, 1, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newExecutorEnv(t, Config{MaxProcesses: 10, PollInterval: tc.override})
			e.setPool(func(s *store.PoolSettings) { s.PollingIntervalSeconds = 3 })
			e.run() // polls at t=0
			e.push("live", 1)
			var got []int
			for range tc.want {
				e.tick()
				got = append(got, e.count(""))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLocalExecutorGivesProcessesAPodsEnvironment(t *testing.T) {
	t.Parallel()
	getenv := func(name string) string {
		return map[string]string{
			"PATH": "/usr/bin:/bin", "HOME": "/home/dev", "MPEGFLOW_FFMPEG": "/opt/ffmpeg/bin/ffmpeg",
			"DATABASE_URL": "postgres://secret", "S3_SECRET_ACCESS_KEY": "secret", "MPEGFLOW_SERVER_SECRET": "secret",
		}[name]
	}
	e := newExecutorEnv(t, Config{MaxProcesses: 10, ClaimWait: 7 * time.Second, Node: "devbox", Getenv: getenv,
		AllowHTTP: true, EgressAllow: "127.0.0.0/8,::1/128"})
	e.setPool(func(s *store.PoolSettings) { s.Accelerator = "nvidia" })
	e.push("live", 1)
	e.run()
	ps := e.exec.Processes()
	require.Len(t, ps, 1)
	p := ps[0]
	envFile := filepath.Join(e.out, p.Pod+".env")
	require.Eventually(t, func() bool { _, err := os.Stat(envFile); return err == nil }, 10*time.Second, 10*time.Millisecond)
	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	assert.Regexp(t, regexp.MustCompile(`^mpegflow-pool-default-[a-z2-7]{8}$`), p.Pod)
	assert.Equal(t, filepath.Join(e.exec.cfg.Dir, "scratch", p.Pod), p.ScratchDir)
	for k, v := range map[string]string{
		"MPEGFLOW_COORDINATOR":  "127.0.0.1:50051",
		"MPEGFLOW_POOL":         "default",
		"MPEGFLOW_LANE":         "live",
		"MPEGFLOW_WORKER_TOKEN": auth.WorkerToken(testSecret, "default"),
		"MPEGFLOW_POD_NAME":     p.Pod,
		"MPEGFLOW_NODE_NAME":    "devbox",
		"MPEGFLOW_SCRATCH_DIR":  p.ScratchDir,
		"MPEGFLOW_CLAIM_WAIT":   "7s",
		"MPEGFLOW_ALLOW_HTTP":   "true",
		"MPEGFLOW_EGRESS_ALLOW": "127.0.0.0/8,::1/128",
		"MPEGFLOW_ACCELERATOR":  "nvidia",
		"MPEGFLOW_FFMPEG":       "/opt/ffmpeg/bin/ffmpeg",
		"HOME":                  "/home/dev",
		"PATH":                  "/usr/bin:/bin",
	} {
		assert.Equal(t, v, env[k], k)
	}
	for _, k := range []string{"DATABASE_URL", "S3_SECRET_ACCESS_KEY", "MPEGFLOW_SERVER_SECRET", "MPEGFLOW_TEST_DATABASE_URL", "MPEGFLOW_FFPROBE"} {
		assert.NotContains(t, env, k, "a pod does not get the server's settings")
	}
	assert.True(t, auth.WorkerTokenValid(testSecret, "default", env["MPEGFLOW_WORKER_TOKEN"]))
	assert.FileExists(t, filepath.Join(e.exec.cfg.Dir, "logs", "encode", p.Pod+".log"))
}

// TestLocalExecutorJobsPerPod: a process of a dedicated pool is told the
// pool's jobs_per_pod, as a pod is; one of the shared pool is not (one job
// per process) even should its row say more.
func TestLocalExecutorJobsPerPod(t *testing.T) {
	t.Parallel()
	x := &Executor{cfg: Config{Coordinator: "127.0.0.1:50051", Secret: testSecret, Getenv: func(string) string { return "" }}}
	org := uuid.New()
	for name, tc := range map[string]struct {
		orgID *uuid.UUID
		want  []string
	}{
		"dedicated": {orgID: &org, want: []string{"MPEGFLOW_JOBS_PER_POD=4"}},
		"shared":    {orgID: nil, want: nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			set := store.DefaultPoolSettings()
			set.JobsPerPod = 4
			env := x.env(store.Pool{ID: "p1", OrgID: tc.orgID, PoolSettings: set}, "backfill", "pod-1", t.TempDir())
			var got []string
			for _, kv := range env {
				if strings.HasPrefix(kv, encodepod.EnvJobsPerPod+"=") {
					got = append(got, kv)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLocalExecutorStopSendsSIGTERM(t *testing.T) {
	t.Parallel()
	e := newExecutorEnv(t, Config{MaxProcesses: 10})
	e.push("live", 3)
	e.run()
	ps := e.exec.Processes()
	require.Len(t, ps, 3)
	for _, p := range ps {
		require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(e.out, p.Pod+".env")); return err == nil }, 10*time.Second, 10*time.Millisecond)
	}
	e.stop() // no clock step: every child exits on SIGTERM, within the grace
	for _, p := range ps {
		assert.FileExists(t, filepath.Join(e.out, p.Pod+".term"), "%s got SIGTERM", p.Pod)
		assert.NoDirExists(t, p.ScratchDir)
		assert.False(t, processAlive(p.PID), "%s still runs", p.Pod)
	}
	assert.Empty(t, e.exec.Processes())
}

func TestLocalExecutorKillsProcessesIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	e := newExecutorEnv(t, Config{MaxProcesses: 10, StopGrace: 8 * time.Second})
	require.NoError(t, os.WriteFile(filepath.Join(e.out, "ignore-term"), nil, 0o644))
	e.push("live", 2)
	e.run()
	ps := e.exec.Processes()
	require.Len(t, ps, 2)
	for _, p := range ps {
		require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(e.out, p.Pod+".env")); return err == nil }, 10*time.Second, 10*time.Millisecond)
	}
	e.cancel()
	// The grace runs on the fake clock: nothing is killed until it passes.
	require.Eventually(t, e.clock.HasWaiters, 10*time.Second, 5*time.Millisecond)
	select {
	case <-e.done:
		t.Fatal("Run returned while children ignoring SIGTERM were still in their grace period")
	case <-time.After(200 * time.Millisecond):
	}
	e.clock.Step(7 * time.Second)
	select {
	case <-e.done:
		t.Fatal("Run returned before the 8 s grace passed")
	case <-time.After(200 * time.Millisecond):
	}
	e.clock.Step(time.Second)
	select {
	case err := <-e.done:
		require.NoError(t, err)
		e.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("children were not killed after the grace")
	}
	for _, p := range ps {
		assert.False(t, processAlive(p.PID), "%s still runs", p.Pod)
		assert.NoFileExists(t, filepath.Join(e.out, p.Pod+".term"))
	}
}

// processAlive reports whether pid exists (the executor reaps its children,
// so an exited one is gone, not a zombie).
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestLocalExecutorRemovesStaleScratchOnly: scratch directories a killed run
// left are removed at start, except one an orphaned encoder still works in.
func TestLocalExecutorRemovesStaleScratchOnly(t *testing.T) {
	t.Parallel()
	e := newExecutorEnv(t, Config{MaxProcesses: 10})
	stale := filepath.Join(e.exec.cfg.Dir, "scratch", "mpegflow-pool-default-stale")
	busy := filepath.Join(e.exec.cfg.Dir, "scratch", "mpegflow-pool-default-busy")
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "job-1"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(busy, "job-2"), 0o700))
	orphan := exec.Command("sleep", "60")
	orphan.Dir = filepath.Join(busy, "job-2")
	require.NoError(t, orphan.Start())
	t.Cleanup(func() { _ = orphan.Process.Kill(); _ = orphan.Wait() })
	e.run()
	assert.NoDirExists(t, stale)
	assert.DirExists(t, busy)
}
