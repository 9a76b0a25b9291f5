package archtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/dev/localexec"
	"github.com/mpegflow/mpegflow/encoder"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

var secret = []byte("archtest-secret-archtest-secret-0123456789")

// Every writer is given the same settings, none of them a default, so a
// variable a writer forgets or misnames parses as its default and differs.
const (
	coordinator = "mpegflow-grpc.media.svc:50051"
	claimWait   = 7 * time.Second
	warmIdle    = 90 * time.Second
	jobsPerPod  = 3
	egressAllow = "127.0.0.0/8,::1/128"
)

func testPool() store.Pool {
	set := store.DefaultPoolSettings()
	set.Name, set.Accelerator = "Acme GPUs", "nvidia"
	set.MaxReplicas, set.BackfillMaxReplicas = 1, 1
	// A cron window makes the pool pre-warmed: its live pods wait
	// warm_idle_seconds for work (not the default).
	set.CronWindows = []store.CronWindow{{Timezone: "UTC", Start: "0 8 * * *", End: "0 20 * * *", DesiredReplicas: 1}}
	set.WarmIdleSeconds = int(warmIdle / time.Second)
	// An organization's own pool: only a dedicated pool's pods run more
	// than one job (not the default) before they exit.
	set.JobsPerPod = jobsPerPod
	org := uuid.MustParse("0b5e6a52-3c1d-4f7e-9a4b-2d8c6e1f0a93")
	return store.Pool{ID: "acme", OrgID: &org, PoolSettings: set, Status: "active"}
}

// seen is what the encoder understood from its environment.
type seen struct {
	Coordinator, Pool, Lane, Pod, Node, Accelerator, ScratchDir, FFmpeg, FFprobe string
	ClaimWait, IdleWait                                                          time.Duration
	JobsPerPod                                                                   int
	WorkerTokenValid, AllowHTTP                                                  bool
	EgressAllow                                                                  []string // the guard's allowlist
}

// parse reads env with the encoder's own reader.
func parse(t *testing.T, env map[string]string) seen {
	t.Helper()
	for name := range env {
		if strings.HasPrefix(name, "MPEGFLOW_") {
			require.Contains(t, encodepodNames(), name, "a writer sets %s, which the encoder does not read", name)
		}
	}
	c, err := encoder.FromEnv(func(name string) string { return env[name] })
	require.NoError(t, err)
	return seen{
		Coordinator: c.Coordinator, Pool: c.Pool, Lane: c.Lane, Pod: c.Pod, Node: c.Node, Accelerator: c.Accelerator,
		ScratchDir: c.ScratchDir, FFmpeg: c.FFmpeg, FFprobe: c.FFprobe, ClaimWait: c.ClaimWait, IdleWait: c.IdleWait,
		JobsPerPod:       c.JobsPerPod,
		WorkerTokenValid: auth.WorkerTokenValid(secret, c.Pool, c.WorkerToken),
		AllowHTTP:        c.Guard.AllowHTTP(), EgressAllow: prefixes(c.Guard.Allowlist()),
	}
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func encodepodNames() []string {
	var out []string
	for _, v := range encodepod.Vars {
		out = append(out, v.Name)
	}
	return out
}

// want is what a pod of lane is told; only the live lane of a pre-warmed
// pool waits warm_idle_seconds (the local executor runs the backfill lane),
// and the pods of both lanes run jobs_per_pod jobs.
func want(lane, pod, node, scratch, ffmpeg string) seen {
	var idle time.Duration
	if lane == "live" {
		idle = warmIdle
	}
	return seen{IdleWait: idle,
		Coordinator: coordinator, Pool: "acme", Lane: lane, Pod: pod, Node: node, Accelerator: "nvidia",
		ScratchDir: scratch, FFmpeg: ffmpeg, FFprobe: "ffprobe", ClaimWait: claimWait, JobsPerPod: jobsPerPod,
		WorkerTokenValid: true, AllowHTTP: true,
		EgressAllow: []string{"127.0.0.0/8", "::1/128"},
	}
}

// TestOperatorPodEnvironmentIsWhatTheEncoderReads renders the operator's
// ScaledJobs, resolves each container's environment as the kubelet would
// (downward API, the pool's rendered Secret), parses it with encoder.FromEnv
// and checks the result, and that the readiness probe tests the encoder's
// readiness file in the scratch directory the environment names.
func TestOperatorPodEnvironmentIsWhatTheEncoderReads(t *testing.T) {
	t.Parallel()
	cfg := operator.Config{
		Namespace: "media", Image: "registry.example/mpegflow-encoder:1", Coordinator: coordinator,
		RedisAddress: "redis:6379", ServerSecret: secret,
		ClaimWait: claimWait, EncoderAllowHTTP: true, EncoderEgressAllow: egressAllow,
	}
	objs, err := operator.Render(cfg, testPool())
	require.NoError(t, err)
	require.Len(t, objs.ScaledJobs, 2, "live and backfill")
	for i, lane := range []string{"live", "backfill"} {
		t.Run(lane, func(t *testing.T) {
			t.Parallel()
			c := objs.ScaledJobs[i].Spec.JobTargetRef.Template.Spec.Containers[0]
			const pod, node = "mpegflow-pool-acme-x7k2p", "gpu-node-3"
			env := map[string]string{}
			for _, v := range c.Env {
				env[v.Name] = resolve(t, v, objs.Secret, pod, node)
			}
			got := parse(t, env)
			require.Empty(t, cmp.Diff(want(lane, pod, node, operator.ScratchDir, "ffmpeg"), got))
			require.Equal(t, []string{"test", "-f", path.Join(got.ScratchDir, encodepod.ReadyFile)}, c.ReadinessProbe.Exec.Command,
				"the probe tests the file the encoder writes")
		})
	}
}

// resolve is what the kubelet puts into the container for v.
func resolve(t *testing.T, v corev1.EnvVar, sec *corev1.Secret, pod, node string) string {
	t.Helper()
	switch src := v.ValueFrom; {
	case src == nil:
		return v.Value
	case src.SecretKeyRef != nil:
		require.Equal(t, sec.Name, src.SecretKeyRef.Name, "%s refers to the pool's Secret", v.Name)
		b, ok := sec.Data[src.SecretKeyRef.Key]
		require.True(t, ok, "%s: the Secret has no key %q", v.Name, src.SecretKeyRef.Key)
		return string(b)
	case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.name":
		return pod
	case src.FieldRef != nil && src.FieldRef.FieldPath == "spec.nodeName":
		return node
	}
	t.Fatalf("%s: a source this test cannot resolve: %+v", v.Name, v.ValueFrom)
	return ""
}

// onePool and backfillLane stand in for the store and the Redis queue: one
// pool with one job waiting on its backfill lane.
type onePool struct{ p store.Pool }

func (o onePool) ListAllPools(context.Context) ([]store.Pool, error) { return []store.Pool{o.p}, nil }

type backfillLane struct{}

func (backfillLane) Len(_ context.Context, _, lane string) (int64, error) {
	if lane == "backfill" {
		return 1, nil
	}
	return 0, nil
}

func (backfillLane) Paused(context.Context, string) (bool, error) { return false, nil }

// fakeEncoder records its environment, then writes the readiness file
// where the real encoder does, and waits for SIGTERM.
const fakeEncoder = `#!/bin/sh
trap 'exit 0' TERM
env > %[1]q.tmp && mv %[1]q.tmp %[1]q
: > "$MPEGFLOW_SCRATCH_DIR/%[2]s"
while :; do sleep 0.05; done
`

// TestLocalExecutorEnvironmentIsWhatTheEncoderReads starts a real encode
// process through the local executor (`mpegflow dev`), parses the
// environment it got with encoder.FromEnv and checks the result, and that
// the executor sees the process become ready once the encoder's readiness
// file appears where the environment says.
func TestLocalExecutorEnvironmentIsWhatTheEncoderReads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "encoder.env")
	script := filepath.Join(dir, "encode.sh")
	require.NoError(t, os.WriteFile(script, fmt.Appendf(nil, fakeEncoder, envFile, encodepod.ReadyFile), 0o755))
	host := map[string]string{"PATH": os.Getenv("PATH"), "MPEGFLOW_FFMPEG": "/opt/ffmpeg/bin/ffmpeg"}
	x, err := localexec.New(localexec.Config{
		Coordinator: coordinator, Secret: secret, Dir: filepath.Join(dir, "dev"), Binary: script, Args: []string{},
		MaxProcesses: 1, PollInterval: time.Second, ClaimWait: claimWait, Node: "devbox",
		Getenv: func(name string) string { return host[name] }, AllowHTTP: true, EgressAllow: egressAllow,
	}, onePool{testPool()}, backfillLane{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	require.Eventually(t, func() bool { _, err := os.Stat(envFile); return err == nil }, 30*time.Second, 20*time.Millisecond,
		"no encode process started")
	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	procs := x.Processes()
	require.Len(t, procs, 1)
	p := procs[0]
	require.Empty(t, cmp.Diff(want("backfill", p.Pod, "devbox", p.ScratchDir, "/opt/ffmpeg/bin/ffmpeg"), parse(t, env)))
	require.Eventually(t, func() bool {
		ps := x.Processes()
		return len(ps) == 1 && ps[0].Ready
	}, 30*time.Second, 20*time.Millisecond, "the executor never saw the readiness file the encoder writes")
}
