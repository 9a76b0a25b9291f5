package encodepod_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/encodepod"
)

func lookup(environ []string) func(string) string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(name string) string { return m[name] }
}

// TestParseReadsExactlyVars fails when Parse reads a variable Vars does not
// list, or Vars lists one Parse never reads, or a name is listed twice.
func TestParseReadsExactlyVars(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	_, _ = encodepod.Parse(func(name string) string { read[name] = true; return "" })
	listed := map[string]bool{}
	for _, v := range encodepod.Vars {
		require.False(t, listed[v.Name], "%s is listed twice", v.Name)
		listed[v.Name] = true
	}
	require.Equal(t, slices.Sorted(maps.Keys(listed)), slices.Sorted(maps.Keys(read)))
}

// TestRenderThenParse: what a writer renders from an Env, the encoder
// parses back to the same Env; fields left empty come back as defaults.
func TestRenderThenParse(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	full := encodepod.Env{
		Coordinator: "coordinator.media.svc:50051", Pool: "p1", Lane: "backfill", WorkerToken: "tok",
		Pod: "mpegflow-pool-p1-backfill-abcde", Node: "gpu-node-1", Accelerator: "nvidia", ScratchDir: "/scratch",
		ClaimWait: 7 * time.Second, IdleWait: 5 * time.Minute, JobsPerPod: 8, AllowHTTP: true, EgressAllow: "127.0.0.0/8,::1/128",
		FFmpeg: "/opt/ffmpeg/bin/ffmpeg", FFprobe: "/opt/ffmpeg/bin/ffprobe",
	}
	for name, tc := range map[string]struct {
		in, want encodepod.Env
	}{
		"every field set": {in: full, want: full},
		"only what is required": {
			in: encodepod.Env{Coordinator: "c:1", WorkerToken: "tok"},
			want: encodepod.Env{Coordinator: "c:1", Pool: "default", Lane: "live", WorkerToken: "tok", Pod: host,
				Accelerator: "cpu", ScratchDir: os.TempDir(), ClaimWait: 0, JobsPerPod: 1, FFmpeg: "ffmpeg", FFprobe: "ffprobe"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := encodepod.Parse(lookup(tc.in.Environ()))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tc.want, got))
		})
	}
}

// TestRenderSkipsEmptyValuesOnly: an empty FromValue variable means its
// default and is left out (one job per pod renders as empty, so pods keep
// the environment they had); one taken from elsewhere is always rendered.
func TestRenderSkipsEmptyValuesOnly(t *testing.T) {
	t.Parallel()
	got := encodepod.Env{Coordinator: "c:1", ClaimWait: 20 * time.Second, JobsPerPod: 1}.Render()
	want := []encodepod.Setting{
		{Name: "MPEGFLOW_COORDINATOR", Value: "c:1"},
		{Name: "MPEGFLOW_WORKER_TOKEN", Source: encodepod.FromWorkerTokenSecret},
		{Name: "MPEGFLOW_POD_NAME", Source: encodepod.FromPodName},
		{Name: "MPEGFLOW_NODE_NAME", Source: encodepod.FromNodeName},
		{Name: "MPEGFLOW_CLAIM_WAIT", Value: "20s"},
	}
	require.Empty(t, cmp.Diff(want, got))
}

func TestParseDefaultsAndErrors(t *testing.T) {
	t.Parallel()
	base := map[string]string{"MPEGFLOW_COORDINATOR": "c:1", "MPEGFLOW_WORKER_TOKEN": "tok"}
	for name, tc := range map[string]struct {
		set     map[string]string
		check   func(t *testing.T, e encodepod.Env)
		wantErr string
	}{
		"defaults": {check: func(t *testing.T, e encodepod.Env) {
			require.Equal(t, 20*time.Second, e.ClaimWait)
			require.Equal(t, 1, e.JobsPerPod)
			require.False(t, e.AllowHTTP)
		}},
		"jobs per pod":            {set: map[string]string{"MPEGFLOW_JOBS_PER_POD": "100"}, check: func(t *testing.T, e encodepod.Env) { require.Equal(t, 100, e.JobsPerPod) }},
		"jobs per pod 0":          {set: map[string]string{"MPEGFLOW_JOBS_PER_POD": "0"}, wantErr: `MPEGFLOW_JOBS_PER_POD: want a whole number from 1 to 100, got "0"`},
		"jobs per pod too many":   {set: map[string]string{"MPEGFLOW_JOBS_PER_POD": "101"}, wantErr: `MPEGFLOW_JOBS_PER_POD: want a whole number from 1 to 100, got "101"`},
		"jobs per pod not number": {set: map[string]string{"MPEGFLOW_JOBS_PER_POD": "many"}, wantErr: `MPEGFLOW_JOBS_PER_POD: want a whole number from 1 to 100, got "many"`},
		"claim wait zero":         {set: map[string]string{"MPEGFLOW_CLAIM_WAIT": "0s"}, check: func(t *testing.T, e encodepod.Env) { require.Zero(t, e.ClaimWait) }},
		"claim wait too long":     {set: map[string]string{"MPEGFLOW_CLAIM_WAIT": "31s"}, wantErr: `MPEGFLOW_CLAIM_WAIT: want a duration from 0s to 30s, got "31s"`},
		"idle wait":               {set: map[string]string{"MPEGFLOW_IDLE_WAIT": "5m"}, check: func(t *testing.T, e encodepod.Env) { require.Equal(t, 5*time.Minute, e.IdleWait) }},
		"idle wait too long":      {set: map[string]string{"MPEGFLOW_IDLE_WAIT": "61m"}, wantErr: `MPEGFLOW_IDLE_WAIT: want a duration from 0s to 1h, got "61m"`},
		"claim wait not duration": {set: map[string]string{"MPEGFLOW_CLAIM_WAIT": "soon"}, wantErr: `MPEGFLOW_CLAIM_WAIT: want a duration from 0s to 30s, got "soon"`},
		"unknown lane":            {set: map[string]string{"MPEGFLOW_LANE": "express"}, wantErr: `MPEGFLOW_LANE: "express" is not live or backfill`},
		"unknown accelerator":     {set: map[string]string{"MPEGFLOW_ACCELERATOR": "tpu"}, wantErr: `MPEGFLOW_ACCELERATOR: "tpu" is not cpu or nvidia`},
		"allow http not bool":     {set: map[string]string{"MPEGFLOW_ALLOW_HTTP": "yes please"}, wantErr: `MPEGFLOW_ALLOW_HTTP: want true or false, got "yes please"`},
		"no coordinator":          {set: map[string]string{"MPEGFLOW_COORDINATOR": ""}, wantErr: "MPEGFLOW_COORDINATOR is required"},
		"no worker token":         {set: map[string]string{"MPEGFLOW_WORKER_TOKEN": ""}, wantErr: "MPEGFLOW_WORKER_TOKEN is required"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := maps.Clone(base)
			maps.Copy(env, tc.set)
			e, err := encodepod.Parse(func(n string) string { return env[n] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, e)
		})
	}
}
