package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// claimedToSplit starts a coordinator and a worker of the default pool,
// which holds a job just submitted.
func claimedToSplit(t *testing.T) (*env, *instance, *worker, uuid.UUID, *coordinatorv1.Job) {
	t.Helper()
	return claimedToSplitWith(t, Config{})
}

// claimedToSplitWith is claimedToSplit with a coordinator configured by cfg.
func claimedToSplitWith(t *testing.T, cfg Config) (*env, *instance, *worker, uuid.UUID, *coordinatorv1.Job) {
	t.Helper()
	e := newEnv(t)
	in := e.start(cfg)
	w := e.worker(in.addr, "default")
	id := e.submitSpec("default", chunkingSpec)
	job, err := w.claim(t.Context(), "splitter", 0)
	require.NoError(t, err)
	require.Equal(t, id.String(), job.GetId())
	return e, in, w, id, job
}

// chunkingSpec asks for 10 s chunks.
var chunkingSpec = json.RawMessage(`{"renditions": [{"codec": "h264", "height": 360, "bitrate_kbps": 600}], "packaging": "hls", "chunking": {"chunk_seconds": 10}}`)

// threeChunks is a valid plan: three 10 s chunks of a 30 s input.
func threeChunks() []*coordinatorv1.ChunkRange {
	return []*coordinatorv1.ChunkRange{
		{Index: 0, StartSeconds: 0, EndSeconds: 10, FirstSegment: 0},
		{Index: 1, StartSeconds: 10, EndSeconds: 20, FirstSegment: 5},
		{Index: 2, StartSeconds: 20, EndSeconds: 30, FirstSegment: 10},
	}
}

// TestSplitChecksThePlan: a plan that does not cover the input in order
// from 0, or whose probe is not a JSON object, is refused with the field at
// fault, and nothing is split.
func TestSplitChecksThePlan(t *testing.T) {
	t.Parallel()
	e, in, w, id, job := claimedToSplit(t)
	ctx := t.Context()

	media := []byte(`{"DurationSeconds": 30}`)
	edit := func(f func([]*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
		return f(threeChunks())
	}
	for name, tc := range map[string]struct {
		chunks []*coordinatorv1.ChunkRange
		media  []byte
		field  string
	}{
		"one chunk": {chunks: threeChunks()[:1], media: media, field: "chunks"},
		"gap": {chunks: edit(func(c []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
			c[1].StartSeconds = 11
			return c
		}), media: media, field: "chunks[1].start_seconds"},
		"out of order": {chunks: edit(func(c []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
			c[0], c[1] = c[1], c[0]
			return c
		}), media: media, field: "chunks[0].index"},
		"not from 0": {chunks: edit(func(c []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
			c[0].StartSeconds = 1
			return c
		}), media: media, field: "chunks[0].start_seconds"},
		"empty range": {chunks: edit(func(c []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
			c[2].EndSeconds = 20
			return c
		}), media: media, field: "chunks[2]"},
		"segments back": {chunks: edit(func(c []*coordinatorv1.ChunkRange) []*coordinatorv1.ChunkRange {
			c[2].FirstSegment = 5
			return c
		}), media: media, field: "chunks[2].first_segment"},
		"probe not an object": {chunks: threeChunks(), media: []byte(`[1, 2]`), field: "media_info_json"},
		"probe too large":     {chunks: threeChunks(), media: append(append([]byte(`{"x": "`), bytes.Repeat([]byte("a"), maxMediaInfo)...), '"', '}'), field: "media_info_json"},
	} {
		_, err := w.client.Split(w.ctx(ctx, job.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: job.GetId(), Chunks: tc.chunks, MediaInfoJson: tc.media, WholeTask: true})
		require.Error(t, err, name)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
		assert.Contains(t, status.Convert(err).Message(), tc.field, name)
	}
	// A plan of chunks far shorter than the job's setting would make
	// more Jobs than the customer asked for.
	short := []*coordinatorv1.ChunkRange{
		{Index: 0, StartSeconds: 0, EndSeconds: 2, FirstSegment: 0},
		{Index: 1, StartSeconds: 2, EndSeconds: 4, FirstSegment: 1},
		{Index: 2, StartSeconds: 4, EndSeconds: 30, FirstSegment: 2},
	}
	_, err := w.client.Split(w.ctx(ctx, job.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: job.GetId(), Chunks: short, MediaInfoJson: media})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "chunk 0 lasts 2 s")
	assert.Zero(t, e.queueLen("default"), "nothing was split")

	// A job whose spec does not ask for chunking is not split.
	e.submit("default", 1)
	plain, err := w.claim(ctx, "plain-pod", 0)
	require.NoError(t, err)
	_, err = w.client.Split(w.ctx(ctx, plain.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: plain.GetId(), Chunks: threeChunks(), MediaInfoJson: media})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "does not ask for chunking")
	tasks, err := e.store.Tasks(ctx, e.org.ID, id)
	require.NoError(t, err)
	assert.Empty(t, tasks)

	// Another pool's worker cannot split the job, even with its token.
	other := e.worker(in.addr, "other-pool")
	_, err = other.client.Split(other.ctx(ctx, job.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: job.GetId(), Chunks: threeChunks(), MediaInfoJson: media})
	assert.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

// TestSplitRunsTasksThenStitches: a split job's tasks are queued on its
// pool and claimed as any job is, each with its range and the probe; a
// task's files go under the job's tasks/ prefix; the last part queues the
// stitch task, which gets every part's files as presigned GETs and whose
// completion completes the job.
func TestSplitRunsTasksThenStitches(t *testing.T) {
	t.Parallel()
	e, in, w, id, job := claimedToSplit(t)
	ctx := t.Context()
	media := []byte(`{"DurationSeconds": 30}`)
	resp, err := w.client.Split(w.ctx(ctx, job.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: job.GetId(), Chunks: threeChunks(), MediaInfoJson: media, WholeTask: true})
	require.NoError(t, err)
	require.Len(t, resp.GetTaskIds(), 4)
	assert.EqualValues(t, 4, e.queueLen("default"), "every task is queued")
	_, err = w.client.Complete(w.ctx(ctx, job.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: job.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "the splitting pod's claim ended with the split: %v", err)
	assert.Equal(t, store.JobRunning, e.job(id).Status)

	seen := map[string]bool{}
	for i := range 4 {
		task, err := w.claim(ctx, "part-"+string(rune('a'+i)), 0)
		require.NoError(t, err)
		require.NotNil(t, task, "task %d", i)
		assert.Equal(t, id.String(), task.GetParentId())
		assert.JSONEq(t, string(media), string(task.GetMediaInfoJson()))
		seen[task.GetTask()] = true
		// A part's heartbeat moves the job's progress: 95 % of the
		// parts' mean, each completed one counting whole.
		_, err = w.heartbeat(ctx, task, 0.5)
		require.NoError(t, err)
		assert.InDelta(t, 0.95*(float64(i)+0.5)/4, e.job(id).Progress, 1e-6, "after part %d's heartbeat", i)
		var outs []*coordinatorv1.Output
		if task.GetTask() == coordinatorv1.TaskChunk && task.GetChunk().GetIndex() == 1 {
			assert.InDelta(t, 10, task.GetChunk().GetStartSeconds(), 1e-9)
			// Its segments go to the job's final keys: only those of its
			// range (5 to 9) are granted, in either layout's names.
			for name, ok := range map[string]bool{
				"360p/seg_00005.m4s": true, "360p/seg_00009.m4s": true, "seg_1_00006.m4s": true, "360p/init.mp4": true,
				"360p/seg_00004.m4s": false, "360p/seg_00010.m4s": false, "seg_1_00005.m4s": false, "seg_1_00011.m4s": false, "360p/seg_x.m4s": false,
			} {
				_, err := w.client.PresignOutputs(w.ctx(ctx, task.GetClaimToken()), &coordinatorv1.PresignOutputsRequest{JobId: task.GetId(),
					Files: []*coordinatorv1.OutputFile{{Name: name, ContentType: "video/iso.segment"}}})
				if ok {
					assert.NoError(t, err, name)
				} else {
					assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
				}
			}
			outs = []*coordinatorv1.Output{
				uploadOutput(t, w, task, "360p/seg_00005.m4s", "segment five"),
				uploadOutput(t, w, task, "segments.json", `{"360p/seg_00005.m4s": {}}`),
			}
		}
		_, err = w.client.Complete(w.ctx(ctx, task.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: task.GetId(), Outputs: outs})
		require.NoError(t, err)
	}
	assert.Equal(t, map[string]bool{coordinatorv1.TaskChunk: true, coordinatorv1.TaskWhole: true}, seen)

	stitch, err := w.claim(ctx, "stitcher", 0)
	require.NoError(t, err)
	require.NotNil(t, stitch, "the last part queued the stitch task")
	assert.Equal(t, coordinatorv1.TaskStitch, stitch.GetTask())
	// A task's wait for a pod is its own kind of dispatch, not a
	// customer's: the job was claimed once, its five tasks each once.
	for kind, want := range map[string]uint64{"job": 1, "task": 5} {
		n, _ := histogramOf(t, in.metrics.Registry, "mpegflow_job_dispatch_duration_seconds", map[string]string{"lane": "live", "kind": kind})
		assert.Equal(t, want, n, kind)
	}
	require.Len(t, stitch.GetParts(), 4, "three chunks and the whole-input part")
	for i, p := range stitch.GetParts()[:3] {
		assert.Equal(t, coordinatorv1.TaskChunk, p.GetTask())
		assert.EqualValues(t, i, p.GetChunk().GetIndex(), "chunks in order")
	}
	assert.Equal(t, coordinatorv1.TaskWhole, stitch.GetParts()[3].GetTask())
	// The stitch task gets the part's ledger, not its segments: those
	// are at their final keys already.
	files := stitch.GetParts()[1].GetFiles()
	require.Len(t, files, 1)
	assert.Equal(t, "segments.json", files[0].GetName())
	assert.Contains(t, files[0].GetUrl(), "/jobs/"+id.String()+"/tasks/", "a task's files are under its job's tasks/ prefix")
	got, err := http.Get(files[0].GetUrl())
	require.NoError(t, err)
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	assert.JSONEq(t, `{"360p/seg_00005.m4s": {}}`, string(body))
	segmentKey := "orgs/" + e.org.ID.String() + "/jobs/" + id.String() + "/outputs/360p/seg_00005.m4s"
	exists, err := e.objects.Exists(ctx, segmentKey)
	require.NoError(t, err)
	require.True(t, exists, "a chunk's segment is at the job's output key")

	partKey := "orgs/" + strings.SplitN(strings.SplitN(files[0].GetUrl(), "?", 2)[0], "/orgs/", 2)[1]
	exists, err = e.objects.Exists(ctx, partKey)
	require.NoError(t, err)
	require.True(t, exists, "the part's file %s is in storage while the job runs", partKey)

	master := uploadOutput(t, w, stitch, "master.m3u8", "#EXTM3U\n")
	_, err = w.client.Complete(w.ctx(ctx, stitch.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: stitch.GetId(), Outputs: []*coordinatorv1.Output{master}})
	require.NoError(t, err)
	done := e.job(id)
	assert.Equal(t, store.JobCompleted, done.Status)
	assert.Contains(t, string(done.Outputs), `"orgs/`+e.org.ID.String()+`/jobs/`+id.String()+`/outputs/master.m3u8"`,
		"the stitch task's outputs are the job's, under its own outputs/ prefix")
	left, err := w.claim(ctx, "late", 0)
	require.NoError(t, err)
	assert.Nil(t, left, "nothing is left to claim")
	exists, err = e.objects.Exists(ctx, partKey)
	require.NoError(t, err)
	assert.False(t, exists, "a part's files are deleted once the job is done")
	exists, err = e.objects.Exists(ctx, segmentKey)
	require.NoError(t, err)
	assert.True(t, exists, "the segments a chunk wrote are the completed job's outputs")
	assert.False(t, e.partsPending(id), "a completed job's parts are dropped for good at once")
}

// partsPending reads whether the split job id still owes the clean-up of
// its parts' files.
func (e *env) partsPending(id uuid.UUID) bool {
	e.t.Helper()
	var pending bool
	require.NoError(e.t, e.db.QueryRow(context.Background(), `SELECT parts_pending FROM jobs WHERE id = $1`, id).Scan(&pending))
	return pending
}

// uploadOutput presigns, uploads and describes one output file of a held
// task.
func uploadOutput(t *testing.T, w *worker, job *coordinatorv1.Job, name, body string) *coordinatorv1.Output {
	t.Helper()
	ctx := w.ctx(context.Background(), job.GetClaimToken())
	p, err := w.client.PresignOutputs(ctx, &coordinatorv1.PresignOutputsRequest{JobId: job.GetId(), Files: []*coordinatorv1.OutputFile{{Name: name, ContentType: "application/octet-stream"}}})
	require.NoError(t, err)
	u := p.GetUploads()[0]
	req, err := http.NewRequest(u.GetMethod(), u.GetUrl(), strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range u.GetHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return &coordinatorv1.Output{Name: name, Kind: "segment", SizeBytes: int64(len(body)), ContentType: "application/octet-stream"}
}

// TestCancelledSplitJobDropsItsParts: when a split job is cancelled
// through the API, its parts' files (under tasks/) and the segments its
// chunks wrote at its output keys are deleted by the recovery loop, but
// only once no pod can still upload with a URL presigned before the
// cancel; then the job owes nothing more.
func TestCancelledSplitJobDropsItsParts(t *testing.T) {
	t.Parallel()
	fc := newFakeClock()
	e, in, w, id, job := claimedToSplitWith(t, Config{Clock: fc, Lease: time.Minute})
	ctx := t.Context()
	_, err := w.client.Split(w.ctx(ctx, job.GetClaimToken()), &coordinatorv1.SplitRequest{JobId: job.GetId(), Chunks: threeChunks(), MediaInfoJson: []byte(`{"DurationSeconds": 30}`), WholeTask: true})
	require.NoError(t, err)
	assert.True(t, e.partsPending(id))

	// One chunk completes with a segment and its ledger; another is
	// still uploading when the job is cancelled.
	var keys []string
	for i, pod := range []string{"done-pod", "busy-pod"} {
		task, err := w.claim(ctx, pod, 0)
		require.NoError(t, err)
		require.NotNil(t, task)
		outs := []*coordinatorv1.Output{
			uploadOutput(t, w, task, fmt.Sprintf("360p/seg_%05d.m4s", task.GetChunk().GetFirstSegment()), "a segment"),
			uploadOutput(t, w, task, "segments.json", "{}"),
		}
		for _, o := range outs {
			keys = append(keys, OutputKey(store.Job{OrgID: e.org.ID, ID: uuid.MustParse(task.GetId()), ParentID: &id, Task: task.GetTask()}, o.GetName()))
		}
		if i == 0 {
			_, err = w.client.Complete(w.ctx(ctx, task.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: task.GetId(), Outputs: outs})
			require.NoError(t, err)
		}
	}
	_, err = e.store.CancelJob(ctx, e.org.ID, id)
	require.NoError(t, err)
	exist := func() (n int) {
		for _, k := range keys {
			ok, err := e.objects.Exists(ctx, k)
			require.NoError(t, err)
			if ok {
				n++
			}
		}
		return n
	}

	fc.Step(2 * time.Minute)
	_, err = in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(keys), exist(), "a pod may still be uploading: nothing is deleted yet")
	assert.True(t, e.partsPending(id))

	fc.Step(e.objects.PresignTTL())
	_, err = in.services.RecoverStaleJobs(ctx)
	require.NoError(t, err)
	assert.Zero(t, exist(), "every part's file and segment is deleted")
	assert.False(t, e.partsPending(id), "the job owes nothing more")
}
