// Command riverbench measures River (github.com/riverqueue/river, built from
// the Go module proxy, never vendored) working no-op jobs against a given
// Postgres, so `make bench-compare` can set MpegFlow's claim + complete
// beside it on the same server in the same run.
//
// River's own benchmark lives in its CLI module
// (github.com/riverqueue/river/cmd/river), which the module proxy this
// project can reach does not serve (v0.51.2: 404 Not Found). This harness
// does what that benchmark's fixed-total mode does, with River's public API
// only: insert N no-op jobs up front (not timed), then start a client
// with a no-op worker and time until all N have completed.
//
// It creates a database of its own on the server (dropped at the end),
// migrates it with rivermigrate, and prints one machine-readable line:
//
//	river jobs=N seconds=S jobs/s=X pg-cpu-us/job=C
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type noOpArgs struct{}

func (noOpArgs) Kind() string { return "noop" }

type noOpWorker struct{ river.WorkerDefaults[noOpArgs] }

func (*noOpWorker) Work(context.Context, *river.Job[noOpArgs]) error { return nil }

func main() {
	var (
		dbURL      = flag.String("database-url", os.Getenv("MPEGFLOW_TEST_DATABASE_URL"), "Postgres server URL (a database is created on it)")
		total      = flag.Int("jobs", 20000, "jobs to insert and work")
		maxWorkers = flag.Int("max-workers", 1000, "River MaxWorkers of the default queue")
		timeout    = flag.Duration("timeout", 5*time.Minute, "give up after")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *dbURL, *total, *maxWorkers); err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, adminURL string, total, maxWorkers int) error {
	if adminURL == "" {
		return fmt.Errorf("no -database-url and no MPEGFLOW_TEST_DATABASE_URL")
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	name := fmt.Sprintf("riverbench_%d", os.Getpid())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck // best effort
	u, err := url.Parse(adminURL)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return fmt.Errorf("migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noOpWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers: workers,
	})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	for left := total; left > 0; left -= 2000 {
		batch := make([]river.InsertManyParams, min(left, 2000))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noOpArgs{}}
		}
		if _, err := client.InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
	}
	// A buffer for every job: River drops events a full channel cannot take.
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return fmt.Errorf("backend pid: %w", err)
	}
	postmaster, _, _ := procStat(backend)
	completed, unsubscribe := client.SubscribeConfig(&river.SubscribeConfig{ChanSize: total, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	defer unsubscribe()
	start, pgStart := time.Now(), serverCPU(postmaster)
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start client: %w", err)
	}
	for n := 0; n < total; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs completed: %w", n, total, ctx.Err())
		case <-completed:
			n++
		}
	}
	elapsed, pgCPU := time.Since(start), serverCPU(postmaster)-pgStart
	if err := client.Stop(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("stop client: %w", err)
	}
	fmt.Printf("river jobs=%d seconds=%.3f jobs/s=%.1f pg-cpu-us/job=%.1f\n", total, elapsed.Seconds(),
		float64(total)/elapsed.Seconds(), float64(pgCPU.Microseconds())/float64(total))
	return nil
}

// serverCPU sums user+system CPU of the Postgres server (the postmaster and
// its children) from /proc, as the dispatcher benchmarks do; 0 when the
// server is not visible from here.
func serverCPU(postmaster int) time.Duration {
	if postmaster == 0 {
		return 0
	}
	var total time.Duration
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, ok := procStat(pid); ok && (ppid == postmaster || pid == postmaster) {
			total += cpu
		}
	}
	return total
}

// procStat reads a process's parent and CPU time from /proc/PID/stat
// (clock ticks of 10 ms).
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
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * 10 * time.Millisecond, true
}
