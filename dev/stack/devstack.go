package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// DefaultBucket is the bucket the private S3 store serves.
const DefaultBucket = "mpegflow"

// startAttempts bounds retries when another process takes a chosen port
// between picking it and the service binding it.
const startAttempts = 5

// Options configure Start. Only Dir is required.
type Options struct {
	// Dir is the data directory; it is created if missing and reused
	// across restarts.
	Dir string
	// DatabaseURL, when set, is used as is and no PostgreSQL is started.
	DatabaseURL string
	// RedisURL, when set, is used as is and no Redis is started.
	RedisURL string
	// S3, when set, is used as is and no S3 server is started.
	S3 *objstore.Config
	// PostgresPort, RedisPort and S3Port fix a service's loopback port; zero
	// picks a free one (the last run's when it is still free).
	PostgresPort, RedisPort, S3Port int
	// Bucket is the private S3 store's bucket (default "mpegflow").
	Bucket string
	// PresignTTL is the lifetime of URLs presigned on the private S3
	// store (default 1 h).
	PresignTTL time.Duration
	// VersityGW is the S3 server binary; empty searches $MPEGFLOW_VERSITYGW,
	// the directory of the running executable, PATH and ./bin/tools.
	VersityGW string
	// ReadyTimeout bounds each service's start-up (default 60 s; a
	// PostgreSQL recovering after a crash may need a while).
	ReadyTimeout time.Duration
	// StopGrace is how long a service may take to shut down cleanly before
	// its process group is killed (default 4 s).
	StopGrace time.Duration
	// Log receives progress messages (default: discarded).
	Log *slog.Logger
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("devstack: a data directory is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("devstack: data directory: %w", err)
	}
	o.Dir = dir
	o.Bucket = cmp.Or(o.Bucket, DefaultBucket)
	o.PresignTTL = cmp.Or(o.PresignTTL, time.Hour)
	o.ReadyTimeout = cmp.Or(o.ReadyTimeout, 60*time.Second)
	o.StopGrace = cmp.Or(o.StopGrace, 4*time.Second)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service describes one service the stack started.
type Service struct {
	Name string // postgres, redis or s3
	Addr string // 127.0.0.1:port
	PID  int
	Log  string // its log file
}

// Stack is the set of running services and how to reach them.
type Stack struct {
	// DatabaseURL, RedisURL and S3 reach the services, started or given.
	DatabaseURL string
	RedisURL    string
	S3          objstore.Config
	// Dir is the absolute data directory.
	Dir string

	opts     Options
	procs    []*proc
	services []Service
	lock     *os.File
	stopping atomic.Bool
	failed   chan error
	done     chan struct{}
}

// Start starts every service not given in opts, waits until each answers,
// and returns. The services run until ctx ends; then they stop in reverse
// order and Done is closed. When Start fails, whatever it started is
// stopped before it returns.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: create %s: %w", opts.Dir, err)
	}
	// Leftover services are recognised by their directories as the kernel
	// reports them, so resolve symbolic links once.
	dir, err := filepath.EvalSymlinks(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("devstack: data directory: %w", err)
	}
	opts.Dir = dir
	if err := restrictDir(dir); err != nil {
		return nil, err
	}
	s := &Stack{Dir: opts.Dir, opts: opts, failed: make(chan error, 3), done: make(chan struct{})}
	for _, d := range []string{s.path("logs"), s.path("run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("devstack: create %s: %w", d, err)
		}
	}
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	if err := s.startAll(ctx); err != nil {
		s.stopAll()
		s.unlock()
		return nil, err
	}
	for _, p := range s.procs {
		go func() {
			<-p.done
			if !s.stopping.Load() {
				s.failed <- fmt.Errorf("%s exited unexpectedly (%s); see %s", p.spec.name, exitText(p.waitErr), p.spec.logPath)
			}
		}()
	}
	go func() {
		<-ctx.Done()
		s.stopAll()
		s.unlock()
		close(s.done)
	}()
	return s, nil
}

func (s *Stack) startAll(ctx context.Context) error {
	last := loadPorts(s.path("ports.json"))
	var pp portPicker
	var err error
	if s.opts.DatabaseURL != "" {
		s.DatabaseURL = s.opts.DatabaseURL
		s.opts.Log.InfoContext(ctx, "using the PostgreSQL of DATABASE_URL")
	} else if s.DatabaseURL, last.Postgres, err = s.startPostgres(ctx, &pp, last.Postgres); err != nil {
		return err
	}
	if s.opts.RedisURL != "" {
		s.RedisURL = s.opts.RedisURL
		s.opts.Log.InfoContext(ctx, "using the Redis of REDIS_URL")
	} else if s.RedisURL, last.Redis, err = s.startRedis(ctx, &pp, last.Redis); err != nil {
		return err
	}
	if s.opts.S3 != nil {
		s.S3 = *s.opts.S3
		s.opts.Log.InfoContext(ctx, "using the S3 store of the S3_* settings")
	} else if s.S3, last.S3, err = s.startS3(ctx, &pp, last.S3); err != nil {
		return err
	}
	if err := savePorts(s.path("ports.json"), last); err != nil {
		s.opts.Log.WarnContext(ctx, "ports not remembered; the next run may pick other ports", slog.Any("error", err))
	}
	return nil
}

// Services lists the services the stack started (not those given).
func (s *Stack) Services() []Service { return slices.Clone(s.services) }

// Failed receives an error when a service exits on its own.
func (s *Stack) Failed() <-chan error { return s.failed }

// Done is closed once every service has stopped after the context ended.
func (s *Stack) Done() <-chan struct{} { return s.done }

func (s *Stack) path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

func (s *Stack) stopAll() {
	s.stopping.Store(true)
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(s.opts.StopGrace)
	}
}

// takeLock makes sure one stack at a time uses the data directory: a second
// one would stop the first one's services as leftovers.
func (s *Stack) takeLock() error {
	f, err := os.OpenFile(s.path(".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("devstack: lock %s: %w", s.Dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("devstack: another mpegflow dev is running on %s; stop it or choose another data directory", s.Dir)
		}
		return fmt.Errorf("devstack: lock %s: %w", s.Dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	s.lock = f
	return nil
}

func (s *Stack) unlock() {
	if s.lock != nil {
		// Unlock explicitly: a child forked at this moment (before its exec
		// closes inherited descriptors) shares the open file, and closing
		// ours alone would leave the lock held until that exec.
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		_ = s.lock.Close()
		s.lock = nil
	}
}

// launch runs a service and waits until ready answers, on a new port when
// the chosen one turns out taken (unless the port is fixed).
func (s *Stack) launch(ctx context.Context, name string, fixed, prefer int, pp *portPicker,
	start func(port int) (*proc, error), ready func(ctx context.Context, p *proc, port int) error, portTaken func(output string) bool,
) (*proc, int, error) {
	var lastErr error
	for attempt := range startAttempts {
		port := fixed
		if port == 0 {
			want := 0
			if attempt == 0 {
				want = prefer
			}
			var err error
			if port, err = pp.pick(want); err != nil {
				return nil, 0, fmt.Errorf("devstack: %s: %w", name, err)
			}
		}
		p, err := start(port)
		if err != nil {
			return nil, 0, fmt.Errorf("devstack: %w", err)
		}
		err = s.waitReady(ctx, p, port, ready)
		if err == nil {
			s.procs = append(s.procs, p)
			s.services = append(s.services, Service{Name: name, Addr: "127.0.0.1:" + strconv.Itoa(port), PID: p.pid(), Log: p.spec.logPath})
			s.opts.Log.InfoContext(ctx, "service ready", slog.String("service", name), slog.Int("port", port), slog.String("log", p.spec.logPath))
			return p, port, nil
		}
		p.stop(s.opts.StopGrace)
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("devstack: start %s: %w", name, ctx.Err())
		}
		lastErr = err
		if fixed != 0 || !portTaken(p.output()) {
			return nil, 0, fmt.Errorf("devstack: %w", err)
		}
		s.opts.Log.InfoContext(ctx, "port taken meanwhile; retrying on another", slog.String("service", name), slog.Int("port", port))
	}
	return nil, 0, fmt.Errorf("devstack: %s: %d attempts: %w", name, startAttempts, lastErr)
}

// permanentError is a readiness failure that waiting cannot cure (a wrong
// password): waitReady gives up at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// waitReady polls ready until it succeeds, the process exits, the timeout
// passes or ready reports a permanentError.
func (s *Stack) waitReady(ctx context.Context, p *proc, port int, ready func(ctx context.Context, p *proc, port int) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			return p.failure("exited during start-up")
		}
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(actx, p, port)
		acancel()
		if last == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(last, &perm) {
			return fmt.Errorf("%s on 127.0.0.1:%d: %w", p.spec.name, port, perm.err)
		}
		select {
		case <-ctx.Done():
			if p.exited() {
				return p.failure("exited during start-up")
			}
			return fmt.Errorf("%s not ready on 127.0.0.1:%d after %s (%w); last lines of %s:\n%s",
				p.spec.name, port, s.opts.ReadyTimeout, last, p.spec.logPath, tail(p.output(), 20))
		case <-p.done:
		case <-tick.C:
		}
	}
}
