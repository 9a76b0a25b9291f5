package encoder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/dispatcher"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestChunkedJobEndToEnd runs a 30 s job with chunking on through real
// `mpegflow encode` processes, the coordinator, Postgres, Redis and S3, as
// a pool's pods would run it: the first pod splits it into three 10 s
// chunks and the whole-input task, pods take one task each (two at a
// time), the last part queues the stitch task, and its pod publishes the
// outputs. The job completes with an HLS ladder that FFmpeg decodes end to
// end: every frame of the input in each rendition, the input's duration.
func TestChunkedJobEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "640x360", 30, true))
	spec := encodespec.Spec{
		Packaging:      encodespec.PackagingHLS,
		SegmentSeconds: 2,
		Renditions: []encodespec.Rendition{
			{Name: "360p", Height: 360, Codec: encodespec.CodecH264, BitrateKbps: 600, Preset: "veryfast"},
			{Name: "240p", Height: 240, Codec: encodespec.CodecH264, BitrateKbps: 300, Preset: "veryfast"},
		},
		Audio:      &encodespec.Audio{Codec: encodespec.AudioAAC, BitrateKbps: 96, Channels: 2},
		Thumbnails: &encodespec.Thumbnails{Width: 160, IntervalSeconds: 10, Poster: true},
		Chunking:   &encodespec.Chunking{ChunkSeconds: 10},
	}
	job := r.jobSpec("", &asset, spec)

	// Pods two at a time, each taking one unit of work, until the job is
	// done: one split, four parts, one stitch.
	done := r.runPods(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v", done.Error)

	tasks, err := r.store.Tasks(context.Background(), r.org.ID, job.ID)
	require.NoError(t, err)
	kinds := map[string]int{}
	var stitchStarted time.Time
	for _, task := range tasks {
		kinds[task.Task]++
		if task.Task == store.TaskStitch && task.StartedAt != nil {
			stitchStarted = *task.StartedAt
		}
		assert.Equal(t, store.JobCompleted, task.Status, "%s task", task.Task)
		assert.Equal(t, 1, task.Attempts, "%s task ran once", task.Task)
	}
	assert.Equal(t, map[string]int{store.TaskChunk: 3, store.TaskWhole: 1, store.TaskStitch: 1}, kinds)

	// The published outputs, fetched from storage, play: each rendition
	// has every one of the input's 750 frames and lasts its 30 s.
	var outs []struct{ Name, Kind, Key string }
	require.NoError(t, json.Unmarshal(done.Outputs, &outs))
	local := t.TempDir()
	names := map[string]bool{}
	segments := 0
	for _, o := range outs {
		names[o.Name] = true
		assert.Contains(t, o.Key, "/jobs/"+job.ID.String()+"/outputs/", "%s is among the job's outputs", o.Name)
		get, err := r.objects.PresignGet(context.Background(), o.Key)
		require.NoError(t, err)
		resp, err := http.Get(get.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, o.Name)
		if strings.HasSuffix(o.Name, ".m4s") && strings.Contains(o.Name, "/seg_") {
			// The chunks wrote the segments at their final keys; the
			// stitch task neither fetched nor uploaded them again.
			modified, err := http.ParseTime(resp.Header.Get("Last-Modified"))
			require.NoError(t, err, o.Name)
			assert.False(t, modified.After(stitchStarted), "%s was stored at %s, after the stitch task started at %s", o.Name, modified, stitchStarted)
			segments++
		}
		dst := filepath.Join(local, filepath.FromSlash(o.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		f, err := os.Create(dst)
		require.NoError(t, err)
		_, err = io.Copy(f, resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	for _, n := range []string{"master.m3u8", "poster.jpg"} {
		assert.True(t, names[n], "%s is an output: %v", n, names)
	}
	require.False(t, stitchStarted.IsZero())
	// 30 s in 2 s segments, two video renditions and the audio (whose
	// AAC priming can spill into a 16th segment).
	assert.GreaterOrEqual(t, segments, 2*15+15)
	for _, rendition := range []string{"360p", "240p"} {
		b, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_frames:format=duration", "-of", "default=nw=1",
			filepath.Join(local, rendition, "index.m3u8")).CombinedOutput()
		require.NoError(t, err, "%s", b)
		fields := map[string]string{}
		for _, line := range strings.Fields(string(b)) {
			k, v, _ := strings.Cut(line, "=")
			fields[k] = v
		}
		assert.Equal(t, "750", fields["nb_read_frames"], "%s: every frame of the input", rendition)
		d, err := strconv.ParseFloat(fields["duration"], 64)
		require.NoError(t, err, "%s", b)
		assert.InDelta(t, 30, d, 0.1, "%s lasts as long as the input", rendition)
	}

	var usage store.Usage
	require.NoError(t, json.Unmarshal(done.Usage, &usage))
	assert.InDelta(t, 30, usage.OutputSeconds, 0.5, "the chunks' seconds of output add up to the input's")
	assert.Positive(t, usage.EncodeSeconds)
	events, err := r.store.ListJobEvents(context.Background(), r.org.ID, job.ID, 0, 100)
	require.NoError(t, err)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	assert.Subset(t, types, []string{"job.split", "job.stitching", "job.completed"})
}

// chunkedSpec is a small HLS ladder with audio, split into 10 s chunks.
func chunkedSpec() encodespec.Spec {
	return encodespec.Spec{
		Packaging:      encodespec.PackagingHLS,
		SegmentSeconds: 2,
		Renditions:     []encodespec.Rendition{{Name: "240p", Height: 240, Codec: encodespec.CodecH264, BitrateKbps: 300, Preset: "veryfast"}},
		Audio:          &encodespec.Audio{Codec: encodespec.AudioAAC, BitrateKbps: 96, Channels: 2},
		Chunking:       &encodespec.Chunking{ChunkSeconds: 10},
	}
}

// slowChunkedSpec is chunkedSpec at 720p with x264's slow preset: a chunk
// takes seconds on a fast machine, so a test sees it encoding (with
// progress reported at a heartbeat) before it ends. At 240p veryfast a
// 10 s chunk took 0.4 s, between two heartbeats.
func slowChunkedSpec() encodespec.Spec {
	spec := chunkedSpec()
	spec.Renditions = []encodespec.Rendition{{Name: "720p", Height: 720, Codec: encodespec.CodecH264, BitrateKbps: 2500, Preset: "slow"}}
	return spec
}

// runPods runs `mpegflow encode` pods two at a time, each taking one unit
// of work (or none, after its claim wait), until job id is finished or
// five minutes have passed; it returns the job and logs every pod's output
// when it did not complete.
func (r *rig) runPods(id uuid.UUID, env ...string) store.Job {
	r.t.Helper()
	var logs []*bytes.Buffer
	deadline := time.Now().Add(5 * time.Minute)
	for !r.get(id).Terminal() && time.Now().Before(deadline) {
		var cmds []*exec.Cmd
		for range 2 {
			scratch := r.t.TempDir()
			cmd, out := r.encode(scratch, env...)
			cmds, logs = append(cmds, cmd), append(logs, out)
			r.t.Cleanup(func() { emptyDir(r.t, scratch) })
		}
		for _, cmd := range cmds {
			require.NoError(r.t, cmd.Wait())
		}
	}
	done := r.get(id)
	if done.Status != store.JobCompleted {
		for _, l := range logs {
			r.t.Log(l.String())
		}
	}
	return done
}

// split runs one pod, which splits job id, and returns its tasks.
func (r *rig) split(id uuid.UUID, env ...string) []store.Job {
	r.t.Helper()
	cmd, logs := r.encode(r.t.TempDir(), env...)
	require.NoError(r.t, cmd.Wait(), "%s", logs)
	require.Contains(r.t, logs.String(), "job split into tasks")
	tasks, err := r.store.Tasks(context.Background(), r.org.ID, id)
	require.NoError(r.t, err)
	require.NotEmpty(r.t, tasks, "%s", logs)
	return tasks
}

// running waits until n tasks of job id are running with progress.
func (r *rig) running(id uuid.UUID, n int) []store.Job {
	r.t.Helper()
	var running []store.Job
	require.Eventually(r.t, func() bool {
		tasks, err := r.store.Tasks(context.Background(), r.org.ID, id)
		require.NoError(r.t, err)
		running = running[:0]
		for _, task := range tasks {
			if task.Status == store.JobRunning && task.Progress > 0 {
				running = append(running, task)
			}
		}
		return len(running) == n
	}, time.Minute, 50*time.Millisecond, "%d tasks encoding", n)
	return running
}

// TestChunkedJobSurvivesAKilledChunk: kill -9 of the pod encoding one chunk
// (a spot reclaim without SIGTERM) costs that chunk one more attempt once
// its lease lapses; no other task runs again and the job completes with
// every frame.
func TestChunkedJobSurvivesAKilledChunk(t *testing.T) {
	t.Parallel()
	r := newRigWith(t, dispatcher.Config{Lease: 3 * time.Second, BackoffBase: 100 * time.Millisecond})
	r.runServices()
	// A chunk slow enough to be seen encoding before it ends.
	asset := r.asset(clip(t, "1280x720", 20, true))
	job := r.jobSpec("", &asset, slowChunkedSpec())
	require.Len(t, r.split(job.ID), 3, "two chunks and the whole-input task")

	victim, logs := r.encode(t.TempDir())
	t.Cleanup(func() {
		// Killed here too when the test ends before it (its output is
		// read only once it has exited).
		_ = victim.Process.Kill()
		_ = victim.Wait()
		if t.Failed() {
			t.Logf("the pod killed: %s", logs)
		}
	})
	killed := r.running(job.ID, 1)[0]
	require.NoError(t, victim.Process.Kill())
	_ = victim.Wait()
	t.Logf("killed the pod encoding the %s task %s", killed.Task, killed.ID)

	done := r.runPods(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v", done.Error)
	tasks, err := r.store.Tasks(t.Context(), r.org.ID, job.ID)
	require.NoError(t, err)
	require.Len(t, tasks, 4, "the two chunks, the whole-input task and the stitch")
	for _, task := range tasks {
		want := 1
		if task.ID == killed.ID {
			want = 2
		}
		assert.Equal(t, want, task.Attempts, "%s task %s: only the killed one ran again", task.Task, task.ID)
	}
}

// TestChunkedJobCancelStopsEveryTask: cancelling a split job while pods
// encode two of its chunks stops both FFmpegs (the pods exit cleanly at
// their next heartbeat) and cancels every task.
func TestChunkedJobCancelStopsEveryTask(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "1280x720", 60, true))
	job := r.jobSpec("", &asset, slowChunkedSpec())
	r.split(job.ID)
	type pod struct {
		cmd     *exec.Cmd
		logs    *bytes.Buffer
		scratch string
	}
	var pods []pod
	for range 2 {
		scratch := t.TempDir()
		cmd, logs := r.encode(scratch)
		pods = append(pods, pod{cmd, logs, scratch})
	}
	r.running(job.ID, 2)
	_, err := r.store.CancelJob(context.Background(), r.org.ID, job.ID)
	require.NoError(t, err)
	for _, p := range pods {
		waited := make(chan error, 1)
		go func() { waited <- p.cmd.Wait() }()
		select {
		case err := <-waited:
			require.NoError(t, err, "%s", p.logs)
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("a pod did not stop after the job was cancelled: %s", p.logs)
		}
		assert.Contains(t, p.logs.String(), "cancelled")
		emptyDir(t, p.scratch)
	}
	assert.Equal(t, store.JobCancelled, r.get(job.ID).Status)
	tasks, err := r.store.Tasks(context.Background(), r.org.ID, job.ID)
	require.NoError(t, err)
	for _, task := range tasks {
		assert.Equal(t, store.JobCancelled, task.Status, "%s task", task.Task)
	}
}

// TestChunkedJobWithACorruptRangeFails: an uploaded input whose index is
// whole but whose last third is zeros splits as usual; the chunks over the
// zeros fail (FFmpeg reads the zeros as media that ends early; the
// verification of the chunk's output finds a rendition shorter than its
// range), the job fails with a reason that names the chunk, its range of
// the input and what is wrong, its other tasks end, and it publishes
// nothing.
func TestChunkedJobWithACorruptRangeFails(t *testing.T) {
	t.Parallel()
	r := newRigWith(t, dispatcher.Config{Lease: 10 * time.Second, BackoffBase: 100 * time.Millisecond})
	r.runServices()
	input := clip(t, "640x360", 40, true)
	data, err := os.ReadFile(input)
	require.NoError(t, err)
	moov := bytes.LastIndex(data, []byte("moov")) - 4
	require.Positive(t, moov, "the index is at the end")
	clear(data[2*len(data)/3 : moov])
	broken := filepath.Join(t.TempDir(), "broken.mp4")
	require.NoError(t, os.WriteFile(broken, data, 0o644))
	asset := r.asset(broken)
	job := r.jobSpec("", &asset, chunkedSpec())
	require.Len(t, r.split(job.ID), 5, "the probe and the index are whole: four chunks and the whole-input task")

	done := r.runPods(job.ID)
	require.Equal(t, store.JobFailed, done.Status)
	require.NotNil(t, done.Error)
	assert.Regexp(t, `^chunk [23] failed: .*the input from 2\d s to \d+ s: .*video lasts \d+\.\d\d s`, *done.Error)
	assert.JSONEq(t, `[]`, string(done.Outputs), "a failed job publishes nothing")
	tasks, err := r.store.Tasks(context.Background(), r.org.ID, job.ID)
	require.NoError(t, err)
	for _, task := range tasks {
		assert.True(t, task.Terminal(), "%s task %s is %s", task.Task, task.ID, task.Status)
		assert.NotEqual(t, store.TaskStitch, task.Task, "nothing is stitched")
	}
}

// TestChunkedJobFromAURLReadsRanges: a job whose input is a customer's
// URL is split and encoded like an uploaded one, but the chunks read it
// through the encoder's guarded loopback proxy, with range requests: only
// the splitting pod and the whole-input task download the whole file.
func TestChunkedJobFromAURLReadsRanges(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	input := clip(t, "640x360", 40, true)
	data, err := os.ReadFile(input)
	require.NoError(t, err)
	var mu sync.Mutex
	var whole, ranged int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		if req.Header.Get("Range") == "" {
			whole++
		} else {
			ranged++
		}
		mu.Unlock()
		http.ServeContent(w, req, "in.mp4", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	devGuard := []string{"MPEGFLOW_ALLOW_HTTP=true", "MPEGFLOW_EGRESS_ALLOW=127.0.0.1/32"}
	job := r.jobSpec(srv.URL+"/in.mp4", nil, chunkedSpec())
	require.Len(t, r.split(job.ID, devGuard...), 5, "four chunks and the whole-input task")

	done := r.runPods(job.ID, devGuard...)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v", done.Error)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, whole, "whole downloads: the splitting pod's and the whole-input task's, none by a chunk")
	assert.GreaterOrEqual(t, ranged, 4, "every chunk read the input with range requests")
}

// runServices runs the coordinator's background services (stale job
// recovery, the delayed job promoter) every 300 ms until the test ends.
func (r *rig) runServices() {
	ctx, cancel := context.WithCancel(context.Background())
	services := dispatcher.NewServices(r.coord, dispatcher.ServicesConfig{StaleJobRecovery: 300 * time.Millisecond, DelayedJobPromoter: 300 * time.Millisecond})
	stopped := make(chan error, 1)
	go func() { stopped <- services.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		<-stopped
	})
}
