package localexec

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/api/encodepod"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Config tunes an Executor. Coordinator, Secret and Dir are
// required; zero values of the rest take the defaults noted.
type Config struct {
	// Coordinator is the host:port encode processes dial
	// (MPEGFLOW_COORDINATOR).
	Coordinator string
	// Secret is the server secret; each process gets its pool's worker
	// token, as the operator's per-pool Secret carries it.
	Secret []byte
	// Dir holds the processes' scratch directories (Dir/scratch/<pod>,
	// removed when the process exits) and logs (Dir/logs/encode/<pod>.log).
	Dir string
	// Binary is the encoder executable (default: this executable); Args are
	// its arguments (default ["encode"]).
	Binary string
	Args   []string
	// MaxProcesses caps encode processes across every pool and lane
	// (default max(1, NumCPU/2): each FFmpeg uses several cores).
	MaxProcesses int
	// PollInterval, when set, replaces every pool's polling interval
	// (polling_interval_seconds, KEDA's pollingInterval).
	PollInterval time.Duration
	// Tick is how often the executor looks for pools whose poll is due
	// (default 1 s, the shortest polling interval a pool may have).
	Tick time.Duration
	// ClaimWait is how long a process long-polls for its job before
	// exiting (MPEGFLOW_CLAIM_WAIT, default 20 s).
	ClaimWait time.Duration
	// StopGrace is how long processes have after SIGTERM before SIGKILL
	// (default 8 s; the encoder hands its job back meanwhile).
	StopGrace time.Duration
	// KeepLogs is how many logs of exited processes are kept (default 200).
	KeepLogs int
	// Node is MPEGFLOW_NODE_NAME (default the host name).
	Node string
	// Getenv reads this process's environment for the variables passed
	// through (PATH, HOME, TZ, MPEGFLOW_FFMPEG, MPEGFLOW_FFPROBE); default
	// os.Getenv.
	Getenv func(string) string
	// Clock paces polls and the stop grace (default the real clock).
	Clock clock.WithTicker
	// AllowHTTP and EgressAllow are the SSRF guard's settings the encoder
	// applies to customer input URLs (MPEGFLOW_ALLOW_HTTP,
	// MPEGFLOW_EGRESS_ALLOW), as the server's own.
	AllowHTTP   bool
	EgressAllow string
}

func (c *Config) defaults() error {
	var errs []error
	if c.Coordinator == "" {
		errs = append(errs, errors.New("local executor: the coordinator address is required"))
	}
	if len(c.Secret) < 32 {
		errs = append(errs, errors.New("local executor: the server secret must be at least 32 bytes"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("local executor: a directory for scratch space and logs is required"))
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			errs = append(errs, fmt.Errorf("local executor: find this executable to run `encode`: %w", err))
		}
		c.Binary = exe
	}
	if c.Args == nil {
		c.Args = []string{"encode"}
	}
	c.MaxProcesses = cmp.Or(c.MaxProcesses, max(1, runtime.NumCPU()/2))
	c.Tick = cmp.Or(c.Tick, time.Second)
	c.ClaimWait = cmp.Or(c.ClaimWait, 20*time.Second)
	c.StopGrace = cmp.Or(c.StopGrace, 8*time.Second)
	c.KeepLogs = cmp.Or(c.KeepLogs, 200)
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.MaxProcesses < 1 || c.Tick < 0 || c.PollInterval < 0 || c.ClaimWait < 0 || c.StopGrace < 0 {
		errs = append(errs, errors.New("local executor: limits and durations must be positive"))
	}
	return errors.Join(errs...)
}

// poolLister reads every pool (the store; the operator's view).
type poolLister interface {
	ListAllPools(ctx context.Context) ([]store.Pool, error)
}

// laneReader reads what KEDA's redis trigger reads, plus the pause key.
type laneReader interface {
	Len(ctx context.Context, pool, lane string) (int64, error)
	Paused(ctx context.Context, pool string) (bool, error)
}

var (
	_ poolLister = (*store.Store)(nil)
	_ laneReader = (*queue.Queue)(nil)
)

// Executor plays KEDA's part on one machine, so `mpegflow dev` runs the
// encoder exactly as a cluster does: for each pool and lane it reads the
// queue length every polling interval and starts `mpegflow encode`
// processes the way a ScaledJob with the `accurate` strategy creates Jobs —
// (queue length ÷ target queue length) minus the processes still pending,
// where pending means started but not yet holding a claim (the encoder
// writes its readiness file then, the file a pod's readiness probe checks).
// It never runs more than the lane's maximum (max_replicas for live,
// backfill_max_replicas for backfill) nor MaxProcesses in all, and starts
// nothing for a paused pool. Each process gets the environment a pod gets,
// its own scratch directory and log file.
//
// Not modelled: min_replicas and cron windows (pre-warmed pods).
type Executor struct {
	cfg   Config
	pools poolLister
	lanes laneReader
	log   *slog.Logger

	mu       sync.Mutex
	children map[string]*localChild // by pod name
	nextPoll map[string]time.Time   // by pool/lane
	wg       sync.WaitGroup
	// onRound, when set (tests), runs after every scaling round.
	onRound func()
}

// localChild is one encode process, a pod's stand-in.
type localChild struct {
	pool, lane, pod string
	scratch         string
	cmd             *exec.Cmd
	started         time.Time
	ready           bool // its readiness file appeared once: no longer pending
}

// Process describes a running encode process.
type Process struct {
	Pool, Lane, Pod string
	PID             int
	ScratchDir      string
	Ready           bool // holds a claim (readiness file seen)
	Started         time.Time
}

// New validates cfg and returns an executor over pools (the
// store) and lanes (the Redis queue).
func New(cfg Config, pools poolLister, lanes laneReader, log *slog.Logger) (*Executor, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(cfg.Dir, "scratch"), filepath.Join(cfg.Dir, "logs", "encode")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("local executor: create %s: %w", d, err)
		}
	}
	return &Executor{
		cfg: cfg, pools: pools, lanes: lanes, log: log,
		children: map[string]*localChild{}, nextPoll: map[string]time.Time{},
	}, nil
}

// Run scales until ctx ends, then sends SIGTERM to every process (the
// encoder stops FFmpeg and hands its job back), kills those still running
// after StopGrace and returns once all are gone.
func (e *Executor) Run(ctx context.Context) error {
	e.removeStaleScratch(ctx)
	t := e.cfg.Clock.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		e.scale(ctx)
		if e.onRound != nil {
			e.onRound()
		}
		select {
		case <-ctx.Done():
			e.stopAll(context.WithoutCancel(ctx))
			return nil
		case <-t.C():
		}
	}
}

// Processes lists the running encode processes.
func (e *Executor) Processes() []Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Process, 0, len(e.children))
	for _, c := range e.children {
		out = append(out, Process{Pool: c.pool, Lane: c.lane, Pod: c.pod, PID: c.cmd.Process.Pid, ScratchDir: c.scratch, Ready: c.ready, Started: c.started})
	}
	slices.SortFunc(out, func(a, b Process) int { return strings.Compare(a.Pod, b.Pod) })
	return out
}

// scale runs one round over the pools whose poll is due.
func (e *Executor) scale(ctx context.Context) {
	pools, err := e.pools.ListAllPools(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.WarnContext(ctx, "local executor cannot list pools; retrying next tick, check Postgres", slog.Any("error", err))
		}
		return
	}
	now := e.cfg.Clock.Now()
	seen := map[string]bool{}
	for _, p := range pools {
		interval := e.cfg.PollInterval
		if interval == 0 {
			interval = time.Duration(max(1, p.PollingIntervalSeconds)) * time.Second
		}
		for _, lane := range apiv1.Lanes {
			key := p.ID + "/" + lane
			seen[key] = true
			if due, ok := e.nextPoll[key]; ok && now.Before(due) {
				continue
			}
			e.nextPoll[key] = now.Add(interval)
			if ctx.Err() != nil {
				return
			}
			e.scaleLane(ctx, p, lane)
		}
	}
	for key := range e.nextPoll {
		if !seen[key] {
			delete(e.nextPoll, key) // the pool was deleted
		}
	}
}

func (e *Executor) scaleLane(ctx context.Context, p store.Pool, lane string) {
	laneMax := p.MaxReplicas
	if lane == apiv1.LaneBackfill {
		laneMax = p.BackfillMaxReplicas
	}
	if laneMax < 1 || p.Status == "paused" {
		return
	}
	log := e.log.With(slog.String("pool_id", p.ID), slog.String("lane", lane))
	// The Redis key is the instant half of a pause; the row follows it.
	paused, err := e.lanes.Paused(ctx, p.ID)
	if err != nil {
		log.WarnContext(ctx, "local executor cannot read the pause key; retrying next poll, check Redis", slog.Any("error", err))
		return
	}
	if paused {
		return
	}
	n, err := e.lanes.Len(ctx, p.ID, lane)
	if err != nil {
		log.WarnContext(ctx, "local executor cannot read the queue length; retrying next poll, check Redis", slog.Any("error", err))
		return
	}
	target := int64(max(1, p.TargetQueueLength))
	want := int((n + target - 1) / target)

	e.mu.Lock()
	running, pending := 0, 0
	for _, c := range e.children {
		if c.pool != p.ID || c.lane != lane {
			continue
		}
		running++
		if !c.ready {
			if _, err := os.Stat(filepath.Join(c.scratch, encodepod.ReadyFile)); err == nil {
				c.ready = true
			}
		}
		if !c.ready {
			pending++
		}
	}
	create := min(want-pending, laneMax-running, e.cfg.MaxProcesses-len(e.children))
	e.mu.Unlock()

	for range max(0, create) {
		if ctx.Err() != nil {
			return
		}
		if err := e.spawn(ctx, p, lane); err != nil {
			log.WarnContext(ctx, "encode process not started; retrying next poll, check the encoder binary", slog.Any("error", err))
			return
		}
	}
	if create > 0 {
		log.InfoContext(ctx, "started encode processes", slog.Int("started", create), slog.Int64("queue_length", n),
			slog.Int("pending", pending), slog.Int("running", running+create))
	}
}

// podName is what KEDA would name the Job's pod: the ScaledJob's name
// (mpegflow-pool-{id}[-backfill]) and a random suffix.
func podName(pool, lane string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "mpegflow-pool-" + pool
	if lane == apiv1.LaneBackfill {
		name += "-backfill"
	}
	return name + "-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// env is the environment a pod of the pool's ScaledJob gets: the encode
// pod's variables (encodepod.Vars, rendered as the operator renders them),
// nothing of the server's (no database, storage or server secret), plus
// PATH, HOME and TZ so the binary and FFmpeg run, and TMPDIR in the scratch
// directory as a pod's private /tmp. The FFmpeg and FFprobe binaries of
// this process's environment pass through, as an image's would.
func (e *Executor) env(p store.Pool, lane, pod, scratch string) []string {
	env := encodepod.Env{
		Coordinator: e.cfg.Coordinator,
		Pool:        p.ID,
		Lane:        lane,
		WorkerToken: auth.WorkerToken(e.cfg.Secret, p.ID),
		Pod:         pod,
		Node:        e.cfg.Node,
		Accelerator: cmp.Or(p.Accelerator, apiv1.AcceleratorCPU),
		ScratchDir:  scratch,
		ClaimWait:   e.cfg.ClaimWait,
		JobsPerPod:  p.PodJobs(),
		AllowHTTP:   e.cfg.AllowHTTP,
		EgressAllow: e.cfg.EgressAllow,
		FFmpeg:      e.cfg.Getenv(encodepod.EnvFFmpeg),
		FFprobe:     e.cfg.Getenv(encodepod.EnvFFprobe),
	}.Environ()
	env = append(env, "TMPDIR="+scratch)
	for _, name := range []string{"PATH", "HOME", "TZ"} {
		if v := e.cfg.Getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

func (e *Executor) spawn(ctx context.Context, p store.Pool, lane string) error {
	pod := podName(p.ID, lane)
	scratch := filepath.Join(e.cfg.Dir, "scratch", pod)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fmt.Errorf("create scratch directory: %w", err)
	}
	logPath := filepath.Join(e.cfg.Dir, "logs", "encode", pod+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		_ = os.RemoveAll(scratch)
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own descriptor; nothing was buffered in ours
	//nolint:noctx // the encoder outlives this call: Run stops it in order (SIGTERM, then SIGKILL to its group), never on ctx
	cmd := exec.Command(e.cfg.Binary, e.cfg.Args...)
	cmd.Env = e.env(p, lane, pod, scratch)
	cmd.Dir = scratch
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, as a pod is its own world: a terminal's
	// Ctrl-C reaches only `mpegflow dev`, which stops children in order
	// (SIGTERM to the encoder alone, so it can stop FFmpeg and hand the
	// job back), and SIGKILL takes the whole group, FFmpeg included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(scratch)
		return fmt.Errorf("start %s: %w", e.cfg.Binary, err)
	}
	c := &localChild{pool: p.ID, lane: lane, pod: pod, scratch: scratch, cmd: cmd, started: e.cfg.Clock.Now()}
	e.mu.Lock()
	e.children[pod] = c
	e.mu.Unlock()
	e.wg.Add(1)
	go e.reap(context.WithoutCancel(ctx), c, logPath)
	return nil
}

// reap waits for a process, then removes its scratch directory and forgets it.
func (e *Executor) reap(ctx context.Context, c *localChild, logPath string) {
	defer e.wg.Done()
	err := c.cmd.Wait()
	// Anything the encoder left in its group (an orphaned FFmpeg) goes
	// with it, as when a pod's containers stop.
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	if rerr := os.RemoveAll(c.scratch); rerr != nil {
		e.log.WarnContext(ctx, "scratch directory not removed; delete it by hand", slog.String("dir", c.scratch), slog.Any("error", rerr))
	}
	e.mu.Lock()
	delete(e.children, c.pod)
	e.mu.Unlock()
	log := e.log.With(slog.String("pool_id", c.pool), slog.String("lane", c.lane), slog.String("pod", c.pod))
	if err != nil {
		log.WarnContext(ctx, "encode process failed; see its log", slog.String("log", logPath), slog.Any("error", err))
	} else {
		log.DebugContext(ctx, "encode process exited", slog.String("log", logPath))
	}
	e.pruneLogs(ctx)
}

// stopAll terminates every process: SIGTERM, then SIGKILL to the group of
// any still running after StopGrace.
func (e *Executor) stopAll(ctx context.Context) {
	e.mu.Lock()
	for _, c := range e.children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	n := len(e.children)
	e.mu.Unlock()
	if n > 0 {
		e.log.InfoContext(ctx, "stopping encode processes", slog.Int("processes", n))
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	t := e.cfg.Clock.NewTimer(e.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C():
	}
	e.mu.Lock()
	for _, c := range e.children {
		e.log.WarnContext(ctx, "encode process ignored SIGTERM; killing it", slog.String("pod", c.pod), slog.Duration("grace", e.cfg.StopGrace))
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
	e.mu.Unlock()
	<-done
}

// removeStaleScratch deletes the scratch directories a killed run left
// behind, except those an encoder of that run still works in (it may still
// finish its job: the coordinator it talks to is back).
func (e *Executor) removeStaleScratch(ctx context.Context) {
	dir := filepath.Join(e.cfg.Dir, "scratch")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	inUse := map[string]bool{}
	if procs, err := os.ReadDir("/proc"); err == nil {
		root, _ := filepath.EvalSymlinks(dir)
		for _, p := range procs {
			cwd, err := os.Readlink(filepath.Join("/proc", p.Name(), "cwd"))
			if err != nil || root == "" {
				continue
			}
			if rel, err := filepath.Rel(root, cwd); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
				inUse[strings.Split(rel, string(filepath.Separator))[0]] = true
			}
		}
	}
	for _, ent := range entries {
		if inUse[ent.Name()] {
			e.log.InfoContext(ctx, "an encode process of an earlier run still works; leaving its scratch directory", slog.String("pod", ent.Name()))
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
			e.log.WarnContext(ctx, "stale scratch directory not removed; delete it by hand", slog.String("dir", ent.Name()), slog.Any("error", err))
		}
	}
}

// pruneLogs keeps the newest KeepLogs logs of exited processes.
func (e *Executor) pruneLogs(ctx context.Context) {
	dir := filepath.Join(e.cfg.Dir, "logs", "encode")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= e.cfg.KeepLogs {
		return
	}
	e.mu.Lock()
	live := map[string]bool{}
	for pod := range e.children {
		live[pod+".log"] = true
	}
	e.mu.Unlock()
	type logFile struct {
		name string
		mod  time.Time
	}
	var logs []logFile
	for _, ent := range entries {
		if live[ent.Name()] || !strings.HasSuffix(ent.Name(), ".log") {
			continue
		}
		if fi, err := ent.Info(); err == nil {
			logs = append(logs, logFile{ent.Name(), fi.ModTime()})
		}
	}
	slices.SortFunc(logs, func(a, b logFile) int { return b.mod.Compare(a.mod) })
	for _, l := range logs[min(len(logs), e.cfg.KeepLogs):] {
		if err := os.Remove(filepath.Join(dir, l.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.log.DebugContext(ctx, "old encode log not removed", slog.String("log", l.name), slog.Any("error", err))
		}
	}
}
