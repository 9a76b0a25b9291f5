package dev

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mpegflow/mpegflow/dev/localexec"
	"github.com/mpegflow/mpegflow/dev/stack"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/server"
)

// The organization `mpegflow dev` bootstraps on its first run.
const (
	devOrg        = "Local"
	devOwnerEmail = "dev@localhost"
	devContext    = "dev" // the CLI context dev writes
)

// devDefaults shorten the periods that make a single machine feel slow (a
// killed encoder's job comes back in seconds, not minutes). The environment
// still wins.
var devDefaults = map[string]string{
	"MPEGFLOW_LEASE":                     "20s",
	"MPEGFLOW_RETRY_BACKOFF_BASE":        "2s",
	"MPEGFLOW_RETRY_BACKOFF_MAX":         "1m",
	"MPEGFLOW_STALE_JOB_RECOVERY_PERIOD": "5s",
	"MPEGFLOW_STALE_WORKER_SWEEP_PERIOD": "10s",
	"MPEGFLOW_DELAYED_PROMOTE_PERIOD":    "1s",
	"MPEGFLOW_QUEUE_RECONCILE_PERIOD":    "5s",
	"MPEGFLOW_WEBHOOK_PERIOD":            "1s",
	// Everything of `mpegflow dev` listens on loopback; inputs and webhook
	// receivers there are the developer's own.
	"MPEGFLOW_EGRESS_ALLOW": "127.0.0.0/8,::1",
}

// How long each part may take to stop after Ctrl-C; together they stay
// within about 10 s even when something hangs.
const (
	devServerStop  = 2 * time.Second
	devServiceStop = 3 * time.Second
)

// Options are `mpegflow dev`'s flags.
type Options struct {
	// Data is the data directory (--data); empty means DataDir's default.
	Data string
	// HTTPAddr, GRPCAddr and MetricsAddr are where the REST API, the
	// coordinator and metrics listen.
	HTTPAddr, GRPCAddr, MetricsAddr string
	// PortBase, when not 0, puts Postgres, Redis and S3 on PortBase+3..+5.
	PortBase int
	// Encoders caps the encode processes at once (0: half the CPUs).
	Encoders int
	// PollInterval is how often queues are polled (0: each pool's own).
	PollInterval time.Duration
}

// Run runs the whole pipeline on this machine until ctx ends: the private
// services, migrations, the serve process and the local executor. It prints
// the banner to stdout and logs to stderr.
func Run(ctx context.Context, stdout, stderr io.Writer, o Options) (err error) {
	cfg, err := config.Load(func(name string) string { return cmp.Or(os.Getenv(name), devDefaults[name]) })
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cfg.AllowHTTP = true // dev inputs and webhooks may be http://localhost
	cfg.HTTPAddr, cfg.GRPCAddr, cfg.MetricsAddr = o.HTTPAddr, o.GRPCAddr, o.MetricsAddr
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	dir, err := DataDir(o.Data)
	if err != nil {
		return err
	}

	// Listen first, so a taken port fails before anything starts.
	lns := server.Roles{REST: true, GRPC: true, Services: true}
	if err := server.Listen(ctx, cfg, &lns); err != nil {
		return fmt.Errorf("%w (choose other addresses with --http-addr, --grpc-addr, --metrics-addr or --port-base)", err)
	}
	listening := true
	defer func() {
		if listening {
			lns.HTTPLn.Close()
			lns.GRPCLn.Close()
			lns.MetricsLn.Close()
		}
	}()

	// The services outlive the servers: encoders hand their jobs back
	// through the coordinator, which needs Postgres and Redis meanwhile.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	opts := stack.Options{Dir: dir, DatabaseURL: cfg.DatabaseURL, RedisURL: cfg.RedisURL,
		PresignTTL: cfg.S3.PresignTTL, StopGrace: devServiceStop, Log: log}
	if os.Getenv("S3_BUCKET") != "" || os.Getenv("S3_ENDPOINT") != "" {
		s3 := cfg.S3
		s3.Bucket = cmp.Or(s3.Bucket, stack.DefaultBucket)
		opts.S3 = &s3
	}
	if o.PortBase != 0 {
		opts.PostgresPort, opts.RedisPort, opts.S3Port = o.PortBase+3, o.PortBase+4, o.PortBase+5
	}
	fmt.Fprintf(stdout, "Starting MpegFlow dev (data in %s)…\n", dir)
	services, err := stack.Start(svcCtx, opts)
	if err != nil {
		return err
	}
	defer func() {
		stopServices()
		<-services.Done()
	}()
	cfg.DatabaseURL, cfg.RedisURL, cfg.S3 = services.DatabaseURL, services.RedisURL, services.S3
	if opts.S3 == nil { // the stack's own store: the console uploads to it
		addr := loopbackAddr(lns.HTTPLn.Addr())
		_, port, _ := net.SplitHostPort(addr)
		cfg.ConsoleUploadOrigins = []string{"http://" + addr, "http://localhost:" + port}
	} else {
		ensureBucket(ctx, cfg.S3, log)
	}
	if cfg.ServerSecret == "" {
		if cfg.ServerSecret, err = stack.ServerSecret(dir); err != nil {
			return err
		}
	}
	if err := server.MigrateUp(cfg.DatabaseURL, log); err != nil {
		return err
	}
	s, err := server.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	key, err := devOwnerKey(ctx, s.Store(), dir, log)
	if err != nil {
		return err
	}

	coordinator := loopbackAddr(lns.GRPCLn.Addr())
	executor, err := localexec.New(localexec.Config{
		Coordinator: coordinator, Secret: []byte(cfg.ServerSecret), Dir: dir,
		MaxProcesses: o.Encoders, PollInterval: o.PollInterval,
		AllowHTTP: cfg.AllowHTTP, EgressAllow: cfg.EgressAllow,
	}, s.Store(), s.Queue(), log)
	if err != nil {
		return err
	}

	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	serveDone := make(chan error, 1)
	listening = false // serve owns the listeners now
	go func() { serveDone <- s.Serve(serveCtx, lns) }()
	execCtx, stopExec := context.WithCancel(ctx)
	defer stopExec()
	execDone := make(chan error, 1)
	go func() { execDone <- executor.Run(execCtx) }()

	server := "http://" + loopbackAddr(lns.HTTPLn.Addr())
	if err := stack.WriteInfo(dir, stack.Info{
		Server: server, Coordinator: coordinator, Metrics: "http://" + loopbackAddr(lns.MetricsLn.Addr()) + "/metrics",
		PID: os.Getpid(), StartedAt: time.Now().UTC(), DatabaseURL: cfg.DatabaseURL, RedisURL: cfg.RedisURL, S3Endpoint: cfg.S3.Endpoint,
	}); err != nil {
		return err
	}
	cliPath, err := cliconfig.Path(os.Getenv)
	if err == nil {
		err = cliconfig.SetCurrent(cliPath, devContext, cliconfig.Context{Server: server, APIKey: key})
	}
	cliNote := fmt.Sprintf("CLI context %q is current (%s): try `mpegflow jobs list`", devContext, cliPath)
	if err != nil {
		log.WarnContext(ctx, "CLI context not written; use `eval \"$(mpegflow dev env)\"` instead", slog.Any("error", err))
		cliNote = "CLI context not written (see the warning above)"
	}
	envCmd := "mpegflow dev env"
	if o.Data != "" {
		envCmd += " --data " + shellQuote(dir)
	}
	fmt.Fprintf(stdout, `
MpegFlow dev is running.
  API:          %s
  console:      %s/console (sign in with the API key)
  API key:      %s
                (owner of organization %q, %s)
  coordinator:  %s
  metrics:      http://%s/metrics
  data:         %s (logs in %s)
  %s
  scripts:      eval "$(%s)"
Press Ctrl-C to stop.
`, server, server, key, devOrg, devOwnerEmail, coordinator, loopbackAddr(lns.MetricsLn.Addr()), dir, filepath.Join(dir, "logs"), cliNote, envCmd)

	var runErr error
	serveEnded, execEnded := false, false
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		serveEnded = true
		runErr = fmt.Errorf("the servers stopped: %w", cmp.Or(err, errors.New("no error given")))
	case err := <-services.Failed():
		runErr = err
	case err := <-execDone:
		execEnded = true
		runErr = fmt.Errorf("the local executor stopped: %w", cmp.Or(err, errors.New("no error given")))
	}
	fmt.Fprintln(stdout, "Stopping MpegFlow dev…")
	// Encoders first: on SIGTERM they hand their jobs back through the
	// coordinator, which is still serving.
	stopping := time.Now()
	stopExec()
	if !execEnded {
		if err := <-execDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("the local executor stopped: %w", err)
		}
	}
	log.InfoContext(ctx, "encoders stopped", slog.Duration("after", time.Since(stopping)))
	stopServe()
	if !serveEnded {
		select {
		case err := <-serveDone:
			if err != nil && runErr == nil {
				runErr = err
			}
		case <-time.After(devServerStop):
			log.WarnContext(ctx, "servers did not stop in time; exiting anyway (open connections are dropped)", slog.Duration("waited", devServerStop))
		}
	}
	log.InfoContext(ctx, "servers stopped", slog.Duration("after", time.Since(stopping)))
	return runErr
}

func ensureBucket(ctx context.Context, cfg objstore.Config, log *slog.Logger) {
	objects, err := objstore.New(ctx, cfg)
	if err == nil {
		err = objects.EnsureBucket(ctx)
	}
	if err != nil {
		log.WarnContext(ctx, "bucket not checked or created; create it yourself if uploads fail", slog.String("bucket", cfg.Bucket), slog.Any("error", err))
	}
}

// loopbackAddr is addr with an unspecified host (0.0.0.0, ::) replaced by
// 127.0.0.1, so it can be dialled and shown as a URL.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
