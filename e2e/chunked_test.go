//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpegflow/mpegflow/client"
)

// chunkedSpec is a small HLS ladder with audio whose inputs of 20 s or
// more are encoded in 10 s chunks (docs/design/0028-chunked-encoding.md).
const chunkedSpec = `{"packaging": "hls", "segment_seconds": 2,
	"renditions": [{"name": "240p", "codec": "h264", "height": 240, "bitrate_kbps": 300, "preset": "veryfast"}],
	"audio": {"codec": "aac", "bitrate_kbps": 96, "channels": 2},
	"chunking": {"chunk_seconds": 10}}`

// chunked: a 30 s input with chunking on becomes, through KEDA, one Job
// that splits it, one Job per task (three chunks and the whole-input
// task; chunks running at the same time) and one stitch Job, each unit of
// work claimed by a pod of its own Job (KEDA keeps only some finished
// Jobs, so the pods are counted, not the Jobs); the job
// completes with an HLS rendition that decodes to every frame of the
// input.
func chunked(t *testing.T, r *rig) {
	asset := r.clip(t, "chunked", 30, "640x360")
	j, err := r.api.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{AssetID: asset}, Spec: json.RawMessage(chunkedSpec), Pool: "default"})
	if err != nil {
		t.Fatalf("submit a chunked job: %v", err)
	}
	r.waitJobs(t, jobTimeout, j.ID)

	evs, err := r.api.JobEvents(t.Context(), j.ID)
	if err != nil {
		t.Fatalf("events of job %s: %v", j.ID, err)
	}
	type span struct{ start, end time.Time }
	chunks := map[string]*span{}
	pods := map[string]bool{}
	tasks := map[string]bool{}
	for _, ev := range evs {
		var d struct {
			Task     string `json:"task"`
			TaskID   string `json:"task_id"`
			WorkerID string `json:"worker_id"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("event %s of job %s: %v", ev.Type, j.ID, err)
		}
		switch ev.Type {
		case "job.started", "task.started":
			pods[d.WorkerID] = true
			tasks[d.TaskID] = true
			if d.Task == "chunk" {
				chunks[d.TaskID] = &span{start: ev.CreatedAt}
			}
		case "task.completed":
			if s := chunks[d.TaskID]; s != nil {
				s.end = ev.CreatedAt
			}
		}
	}
	if len(chunks) != 3 || len(tasks) != 6 {
		t.Fatalf("job %s ran %d chunk tasks and %d units of work in all, want 3 and 6 (the job, 3 chunks, the whole-input task, the stitch task)", j.ID, len(chunks), len(tasks))
	}
	if len(pods) != 6 {
		t.Errorf("the job's 6 units of work ran in %d pods, want one pod each: %v", len(pods), pods)
	}
	for p := range pods {
		if !strings.HasPrefix(p, scaledJobName("default")+"-") {
			t.Errorf("pod %s of job %s is not a pod of a Job KEDA made for pool default", p, j.ID)
		}
	}
	overlap := false
	for a, sa := range chunks {
		for b, sb := range chunks {
			if a < b && sa.start.Before(sb.end) && sb.start.Before(sa.end) {
				overlap = true
			}
		}
	}
	if !overlap {
		t.Errorf("no two chunks of job %s ran at the same time: %v", j.ID, chunks)
	}

	outs, err := r.api.JobOutputs(t.Context(), j.ID)
	if err != nil {
		t.Fatalf("outputs of job %s: %v", j.ID, err)
	}
	dir := t.TempDir()
	for _, o := range outs {
		if _, err := r.api.Download(t.Context(), o.Download.URL, filepath.Join(dir, filepath.FromSlash(o.Name))); err != nil {
			t.Fatalf("download output %s of job %s: %v", o.Name, j.ID, err)
		}
	}
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", filepath.Join(dir, "240p", "index.m3u8")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe the stitched rendition of job %s: %v\n%s", j.ID, err, out)
	}
	// One count per program ffprobe lists for the playlist.
	counts := strings.Fields(string(out))
	if len(counts) == 0 {
		t.Fatalf("ffprobe counted no frames in the stitched rendition of job %s", j.ID)
	}
	for _, got := range counts {
		if got != "750" {
			t.Errorf("the stitched rendition of job %s has %s frames, want the input's 750", j.ID, got)
		}
	}
}
