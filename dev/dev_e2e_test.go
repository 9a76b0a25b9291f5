package dev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/dev/stack"
)

// devE2E drives one running `mpegflow dev` the way a user does: the built
// binary with the CLI context dev wrote, and plain REST.
type devE2E struct {
	bin string
	env []string
	// server and key are what the banner of the current run printed.
	server, key string
}

// cli runs `mpegflow ARGS...` and returns its stdout, stderr and error.
func (e *devE2E) cli(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mpegflow %s did not finish within %s:\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, out.String(), devLastBytes(errb.String(), 4096))
	}
	return out.String(), errb.String(), err
}

// mustCLI runs the CLI and requires exit status 0.
func (e *devE2E) mustCLI(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, errOut, err := e.cli(t, timeout, args...)
	require.NoError(t, err, "mpegflow %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, devLastBytes(errOut, 4096))
	return out
}

// submit runs `jobs submit FILE --workflow W [extra...] -o json` and returns
// the job it printed.
func (e *devE2E) submit(t *testing.T, file, workflow string, extra ...string) client.Job {
	t.Helper()
	args := append([]string{"jobs", "submit", file, "--workflow", workflow, "-o", "json"}, extra...)
	var j client.Job
	out := e.mustCLI(t, time.Minute, args...)
	require.NoError(t, json.Unmarshal([]byte(out), &j), out)
	require.NotEmpty(t, j.ID, out)
	return j
}

// job is `jobs get ID -o json`.
func (e *devE2E) job(t *testing.T, id string) client.Job {
	t.Helper()
	out := e.mustCLI(t, 30*time.Second, "jobs", "get", id, "-o", "json")
	var j client.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j), out)
	return j
}

// rest calls the API with the owner key and decodes the JSON answer into out.
func (e *devE2E) rest(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.server+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "%s %s answered %d: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// download is `jobs download ID --dir DIR`; it returns the saved paths.
func (e *devE2E) download(t *testing.T, id, dir string) []string {
	t.Helper()
	out := e.mustCLI(t, time.Minute, "jobs", "download", id, "--dir", dir)
	paths := strings.Fields(out)
	require.NotEmpty(t, paths, "jobs download printed no paths")
	for _, p := range paths {
		fi, err := os.Stat(p)
		require.NoError(t, err, "jobs download printed %s", p)
		assert.Positive(t, fi.Size(), p)
	}
	return paths
}

// devEncoder is one `mpegflow encode` process the local executor started
// for this data directory.
type devEncoder struct {
	pid          int
	pod, pool    string
	scratch      string
	hasClaimFile bool
}

// devEncoders scans /proc for `mpegflow encode` processes whose scratch
// directory (MPEGFLOW_SCRATCH_DIR) lies in data/scratch, so encoders of any
// other test or stack are never touched.
func devEncoders(data string) []devEncoder {
	scratchRoot := filepath.Join(data, "scratch") + string(filepath.Separator)
	var out []devEncoder
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "encode" || filepath.Base(args[0]) != "mpegflow" {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil {
			continue
		}
		var enc devEncoder
		for _, kv := range strings.Split(string(environ), "\x00") {
			name, value, _ := strings.Cut(kv, "=")
			switch name {
			case encodepod.EnvScratchDir:
				enc.scratch = value
			case encodepod.EnvPodName:
				enc.pod = value
			case encodepod.EnvPool:
				enc.pool = value
			}
		}
		if !strings.HasPrefix(enc.scratch, scratchRoot) || !devProcessRunning(pid) {
			continue
		}
		enc.pid = pid
		_, err = os.Stat(filepath.Join(enc.scratch, encodepod.ReadyFile))
		enc.hasClaimFile = err == nil
		out = append(out, enc)
	}
	return out
}

// devFFmpegEncoding is the pid of an FFmpeg below pid that reads an input
// (not a capability probe), or 0.
func devFFmpegEncoding(pid int) int {
	for _, kid := range stack.Descendants(pid) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(kid), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(args[0]) == "ffmpeg" && slices.Contains(args, "-i") && devProcessRunning(kid) {
			return kid
		}
	}
	return 0
}

// devPoolTraces lists what any encode process started for pool would have
// left: its log (kept after it exits), its scratch directory and the
// process itself.
func devPoolTraces(data, pool string) []string {
	prefix := "mpegflow-pool-" + pool + "-"
	var out []string
	for _, dir := range []string{filepath.Join(data, "logs", "encode"), filepath.Join(data, "scratch")} {
		entries, _ := os.ReadDir(dir)
		for _, ent := range entries {
			if strings.HasPrefix(ent.Name(), prefix) {
				out = append(out, filepath.Join(dir, ent.Name()))
			}
		}
	}
	for _, enc := range devEncoders(data) {
		if enc.pool == pool {
			out = append(out, "process "+strconv.Itoa(enc.pid)+" ("+enc.pod+")")
		}
	}
	return out
}

// devClip generates a test clip with FFmpeg's lavfi sources.
func devClip(t *testing.T, path, size string, seconds int) {
	t.Helper()
	d := strconv.Itoa(seconds)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=30:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
		"-shortest", "-y", path).CombinedOutput()
	require.NoError(t, err, "generate %s: %s", path, out)
}

// devProbe is what ffprobe says of a media file: its duration in seconds
// and its streams' codec types. It fails the test when ffprobe rejects it.
func devProbe(t *testing.T, path string) (float64, []string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
		"-of", "json", path).Output()
	require.NoError(t, err, "ffprobe rejects %s", path)
	var probe struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &probe), "%s", out)
	d, err := strconv.ParseFloat(probe.Format.Duration, 64)
	require.NoError(t, err, "duration of %s: %s", path, out)
	var types []string
	for _, s := range probe.Streams {
		types = append(types, s.CodecType)
	}
	return d, types
}

// TestDevEndToEnd runs the real binary as a user would: `mpegflow dev` on
// free ports in a temporary data directory, then only the CLI (with the
// context dev wrote) and REST. A submitted clip is encoded, followed,
// downloaded and accepted by ffprobe; a paused pool starts no encoder while
// its jobs wait and drains them on resume; a job whose encoder is killed with
// SIGKILL is recovered and completes on its second attempt; after a Ctrl-C
// and a restart on the same data directory the key, the jobs and their
// outputs are all still there.
func TestDevEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH (%v): the end-to-end test encodes real video; install FFmpeg (scripts/deps.sh)", tool, err)
		}
	}
	vgw := devVersityGW(t)
	tmp := t.TempDir()
	bin := devBuild(t, tmp)
	data := filepath.Join(tmp, "data")
	env := devEnv(filepath.Join(tmp, "config", "cli.json"), vgw)
	args := []string{"--data", data, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--poll-interval", "1s"}
	e := &devE2E{bin: bin, env: env}

	short := filepath.Join(tmp, "short.mp4")
	devClip(t, short, "640x360", 3)
	long := filepath.Join(tmp, "long.mp4")
	devClip(t, long, "1280x720", 12)

	start := func() *devProcess {
		p := devStart(t, bin, env, args...)
		m := devAPIURL.FindStringSubmatch(p.output())
		require.Len(t, m, 2, p.output())
		e.server = m[1]
		m = devAPIKey.FindStringSubmatch(p.output())
		require.Len(t, m, 2, p.output())
		e.key = m[1]
		devWaitReady(t, e.server)
		return p
	}
	began := time.Now()
	p := start()
	firstKey := e.key
	t.Logf("mpegflow dev ready after %s", time.Since(began).Round(time.Millisecond))

	var (
		firstJob     client.Job
		firstOutputs = map[string][]byte{} // name under the download dir → content
		killedJob    client.Job
	)

	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		stepStart := time.Now()
		ok := t.Run(name, fn)
		t.Logf("%s: %s", name, time.Since(stepStart).Round(time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}

	step("submit, watch, download", func(t *testing.T) {
		j := e.submit(t, short, "mp4-720p")
		assert.Equal(t, "default", j.PoolID)
		e.mustCLI(t, 2*time.Minute, "jobs", "watch", j.ID)
		j = e.job(t, j.ID)
		require.Equal(t, client.JobCompleted, j.Status, "jobs watch exited 0, so the job completed: %+v", j)
		assert.Equal(t, 1, j.Attempts)
		firstJob = j

		dir := filepath.Join(tmp, "out-1")
		paths := e.download(t, j.ID, dir)
		inDur, _ := devProbe(t, short)
		var mp4s int
		for _, path := range paths {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			rel, err := filepath.Rel(dir, path)
			require.NoError(t, err)
			firstOutputs[rel] = b
			if filepath.Ext(path) != ".mp4" {
				continue
			}
			mp4s++
			outDur, streams := devProbe(t, path)
			assert.InDelta(t, inDur, outDur, 1, "duration of %s", rel)
			assert.Contains(t, streams, "video", rel)
			assert.Contains(t, streams, "audio", rel)
		}
		assert.Equal(t, 1, mp4s, "mp4-720p makes one MP4; downloaded %v", paths)
	})

	step("a paused pool starts no encoder and resume drains it", func(t *testing.T) {
		var pool client.Pool
		status := e.rest(t, http.MethodPost, "/v1/pools", map[string]any{"name": "e2e", "max_replicas": 2}, &pool)
		require.Equal(t, http.StatusCreated, status, "%+v", pool)
		require.NotEmpty(t, pool.ID)

		var paused client.Pool
		out := e.mustCLI(t, 30*time.Second, "pools", "pause", pool.ID, "-o", "json")
		require.NoError(t, json.Unmarshal([]byte(out), &paused), out)
		require.Equal(t, "paused", paused.Status)

		a := e.submit(t, short, "mp4-720p", "--pool", pool.ID)
		b := e.submit(t, short, "mp4-720p", "--pool", pool.ID)
		assert.Equal(t, pool.ID, a.PoolID)

		// Absence of an event: watch four executor polls (--poll-interval
		// 1s) and require that nothing ever starts for this pool.
		deadline := time.Now().Add(4 * time.Second)
		for {
			require.Empty(t, devPoolTraces(data, pool.ID), "an encode process started for paused pool %s", pool.ID)
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		var got client.Pool
		require.Equal(t, http.StatusOK, e.rest(t, http.MethodGet, "/v1/pools/"+pool.ID, nil, &got))
		assert.Equal(t, "paused", got.Status)
		assert.Equal(t, int64(2), got.QueueDepth["live"], "both jobs wait in the pool's queue: %v", got.QueueDepth)
		for _, id := range []string{a.ID, b.ID} {
			j := e.job(t, id)
			assert.Equal(t, client.JobQueued, j.Status, "job %s", id)
			assert.Zero(t, j.Attempts, "job %s was never claimed", id)
		}

		out = e.mustCLI(t, 30*time.Second, "pools", "resume", pool.ID, "-o", "json")
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		assert.Equal(t, "active", got.Status)
		e.mustCLI(t, 2*time.Minute, "jobs", "watch", a.ID, b.ID)
		for _, id := range []string{a.ID, b.ID} {
			j := e.job(t, id)
			assert.Equal(t, client.JobCompleted, j.Status, "job %s", id)
			assert.Equal(t, 1, j.Attempts, "job %s", id)
		}
		// The check above could see encoders: now that the pool runs, it does.
		assert.NotEmpty(t, devPoolTraces(data, pool.ID), "no trace of the encoders that ran the resumed pool's jobs")
		// The queue drains. Eventually, not at once: a job that waited past
		// the queue reconciler's grace may be pushed a second time while an
		// encoder holds its popped id (ReconcileGrace: harmless, wasteful);
		// the encoder started for that id pops it, finds the job taken and
		// exits.
		require.Eventually(t, func() bool {
			return e.rest(t, http.MethodGet, "/v1/pools/"+pool.ID, nil, &got) == http.StatusOK && got.QueueDepth["live"] == 0
		}, time.Minute, 200*time.Millisecond, "the resumed pool's queue did not drain: %v", got.QueueDepth)
	})

	step("a SIGKILLed encoder's job is recovered", func(t *testing.T) {
		j := e.submit(t, long, "hls-ladder")
		submitted := time.Now()
		// Wait until an encoder of this data directory holds the job and
		// its FFmpeg is encoding.
		var (
			victim devEncoder
			ffmpeg int
		)
		deadline := time.Now().Add(90 * time.Second)
		for ffmpeg == 0 {
			cur := e.job(t, j.ID)
			require.NotEqual(t, client.JobCompleted, cur.Status, "the job finished before its encoder could be killed; use a longer clip")
			if cur.Status == client.JobRunning && cur.WorkerID != nil {
				for _, enc := range devEncoders(data) {
					if enc.pod == *cur.WorkerID && enc.hasClaimFile {
						victim, ffmpeg = enc, devFFmpegEncoding(enc.pid)
					}
				}
			}
			if ffmpeg == 0 {
				require.True(t, time.Now().Before(deadline), "no encoder is encoding job %s after 90 s (status %s)", j.ID, cur.Status)
				time.Sleep(100 * time.Millisecond)
			}
		}
		assert.Equal(t, "default", victim.pool)
		require.NoError(t, syscall.Kill(victim.pid, syscall.SIGKILL))
		killed := time.Now()
		t.Logf("killed encoder %d (%s, FFmpeg %d) of job %s %s after submitting it", victim.pid, victim.pod, ffmpeg, j.ID, killed.Sub(submitted).Round(time.Millisecond))
		// The encoder exits for good (not handing its job back): only the
		// lease's expiry can bring the job back. Its FFmpeg goes with it,
		// as a pod's containers do.
		require.Eventually(t, func() bool { return !devProcessRunning(victim.pid) && !devProcessRunning(ffmpeg) },
			10*time.Second, 100*time.Millisecond, "the killed encoder or its FFmpeg still runs")
		cur := e.job(t, j.ID)
		assert.Equal(t, client.JobRunning, cur.Status, "the job stays running until its lease lapses")
		assert.Equal(t, 1, cur.Attempts)

		e.mustCLI(t, 3*time.Minute, "jobs", "watch", j.ID)
		t.Logf("job %s completed %s after its encoder was killed", j.ID, time.Since(killed).Round(time.Millisecond))
		j = e.job(t, j.ID)
		require.Equal(t, client.JobCompleted, j.Status, "%+v", j)
		assert.Equal(t, 2, j.Attempts, "the killed attempt counts, the second completes")
		require.NotNil(t, j.WorkerID)
		assert.NotEqual(t, victim.pod, *j.WorkerID, "another encoder ran the second attempt")
		killedJob = j

		dir := filepath.Join(tmp, "out-recovered")
		e.download(t, j.ID, dir)
		inDur, _ := devProbe(t, long)
		outDur, streams := devProbe(t, filepath.Join(dir, "master.m3u8"))
		assert.InDelta(t, inDur, outDur, 1, "duration of the recovered job's HLS master playlist")
		assert.Contains(t, streams, "video")
	})

	step("restart keeps the key, the jobs and their outputs", func(t *testing.T) {
		devStop(t, p, data)
		p = start()
		assert.Equal(t, firstKey, e.key, "the owner key is kept across restarts")
		status, _ := devGetOrganization(t, e.server, firstKey)
		assert.Equal(t, http.StatusOK, status, "the first run's key authenticates")

		for _, want := range []client.Job{firstJob, killedJob} {
			j := e.job(t, want.ID) // through the rewritten CLI context
			assert.Equal(t, client.JobCompleted, j.Status, "job %s", want.ID)
			assert.Equal(t, want.Attempts, j.Attempts, "job %s", want.ID)
		}
		dir := filepath.Join(tmp, "out-again")
		paths := e.download(t, firstJob.ID, dir)
		got := map[string][]byte{}
		for _, path := range paths {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			rel, err := filepath.Rel(dir, path)
			require.NoError(t, err)
			got[rel] = b
		}
		assert.Equal(t, len(firstOutputs), len(got), "the same outputs")
		for name, b := range firstOutputs {
			assert.True(t, bytes.Equal(b, got[name]), "output %s differs after the restart", name)
		}
		devStop(t, p, data)
	})
	t.Logf("whole run: %s", time.Since(began).Round(time.Millisecond))
}
