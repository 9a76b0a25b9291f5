//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// workflow is the built-in the scenarios encode with: one MP4 rendition.
const workflow = "mp4-720p"

// clip generates a test clip of seconds at size with FFmpeg's lavfi
// sources (a moving pattern and a tone) and uploads it as an asset.
func (r *rig) clip(t *testing.T, name string, seconds int, size string) string {
	t.Helper()
	path := filepath.Join(r.clips, name+".mp4")
	testenv.Clip(t, path, seconds, size)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	size64 := fi.Size()
	a, err := r.api.CreateAsset(t.Context(), client.AssetRequest{Filename: name + ".mp4", ContentType: "video/mp4", SizeBytes: &size64})
	if err != nil {
		t.Fatalf("create asset %s: %v", name, err)
	}
	if err := r.api.UploadFile(t.Context(), a.Upload.URL, "video/mp4", f, nil); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return a.ID
}

// submit creates a job over REST.
func (r *rig) submit(t *testing.T, asset, pool string) client.Job {
	t.Helper()
	j, err := r.api.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{AssetID: asset}, Workflow: workflow, Pool: pool})
	if err != nil {
		t.Fatalf("submit a job to pool %s: %v", pool, err)
	}
	return j
}

// waitJobs waits until every job is completed; a job that fails or is
// cancelled fails the test at once.
func (r *rig) waitJobs(t *testing.T, timeout time.Duration, ids ...string) []client.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	out := make([]client.Job, len(ids))
	err := poll(ctx, 500*time.Millisecond, func() (bool, error) {
		r.alive(t)
		done := true
		for i, id := range ids {
			j, err := r.api.GetJob(ctx, id)
			if err != nil {
				return false, fmt.Errorf("get job %s: %w", id, err)
			}
			out[i] = j
			switch j.Status {
			case client.JobCompleted:
			case client.JobFailed, client.JobCancelled:
				msg := ""
				if j.Error != nil {
					msg = *j.Error
				}
				return false, fmt.Errorf("job %s ended %s: %s", id, j.Status, msg)
			default:
				done = false
			}
		}
		return done, nil
	}, "wait for jobs to complete")
	if err != nil {
		t.Fatalf("%v\n%s", err, r.describe(t))
	}
	return out
}

// waitStatus waits until the job reaches status.
func (r *rig) waitStatus(t *testing.T, id, status string, timeout time.Duration) client.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var j client.Job
	err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		r.alive(t)
		var err error
		j, err = r.api.GetJob(ctx, id)
		if err != nil {
			return false, fmt.Errorf("get job %s: %w", id, err)
		}
		return j.Status == status, nil
	}, fmt.Sprintf("wait for job %s to be %s", id, status))
	if err != nil {
		t.Fatalf("%v (last status %q)\n%s", err, j.Status, r.describe(t))
	}
	return j
}

// workers are the pods that claimed the job, one per attempt, from its
// job.started events.
func (r *rig) workers(t *testing.T, id string) []string {
	t.Helper()
	return testenv.Workers(t, r.api, id)
}

// verifyOutputs downloads every output of a completed job through its
// presigned S3 URL and checks with ffprobe that it is a video of the
// workflow's height.
func (r *rig) verifyOutputs(t *testing.T, id string) {
	t.Helper()
	outs, err := r.api.JobOutputs(t.Context(), id)
	if err != nil {
		t.Fatalf("outputs of job %s: %v", id, err)
	}
	if len(outs) == 0 {
		t.Fatalf("job %s completed with no outputs", id)
	}
	dir := t.TempDir()
	videos := 0
	for _, o := range outs {
		dst := filepath.Join(dir, filepath.Base(o.Name))
		n, err := r.api.Download(t.Context(), o.Download.URL, dst)
		if err != nil {
			t.Fatalf("download output %s of job %s from S3: %v", o.Name, id, err)
		}
		if n == 0 || n != o.SizeBytes {
			t.Fatalf("output %s of job %s: downloaded %d bytes, the job recorded %d", o.Name, id, n, o.SizeBytes)
		}
		if !strings.HasSuffix(o.Name, ".mp4") {
			continue
		}
		out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name,height", "-of", "csv=p=0", dst).Output()
		if err != nil {
			t.Fatalf("ffprobe output %s of job %s: %v", o.Name, id, err)
		}
		fields := strings.Split(strings.TrimSpace(string(out)), ",")
		if len(fields) != 2 || fields[0] != "h264" {
			t.Fatalf("output %s of job %s: ffprobe says %q, want an h264 video stream", o.Name, id, out)
		}
		if h, _ := strconv.Atoi(fields[1]); h <= 0 {
			t.Fatalf("output %s of job %s: video height %q", o.Name, id, fields[1])
		}
		videos++
	}
	if videos == 0 {
		t.Fatalf("job %s has no MP4 output among %d files", id, len(outs))
	}
}

// kubeJobs lists the batch Jobs KEDA created for a pool's ScaledJob.
func (r *rig) kubeJobs(t *testing.T, pool string) []batchv1.Job {
	t.Helper()
	l, err := r.cs.BatchV1().Jobs(namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "scaledjob.keda.sh/name=" + scaledJobName(pool)})
	if err != nil {
		t.Fatalf("list Jobs of pool %s: %v", pool, err)
	}
	return l.Items
}

// pod returns the pod named name.
func (r *rig) pod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := r.cs.CoreV1().Pods(namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

// steady asserts that the number of Jobs of pool stays want for window
// (KEDA's polling slack): this is an observation, not a wait for something.
func (r *rig) steady(t *testing.T, pool string, want int, window time.Duration) {
	t.Helper()
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if got := len(r.kubeJobs(t, pool)); got != want {
			t.Fatalf("pool %s has %d Jobs, want %d\n%s", pool, got, want, r.describe(t))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// describe is the state of Jobs and pods, for failure messages.
func (r *rig) describe(_ *testing.T) string {
	var b bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs, err := r.cs.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, j := range jobs.Items {
			fmt.Fprintf(&b, "job %s active=%d ready=%v succeeded=%d failed=%d\n", j.Name, j.Status.Active, deref(j.Status.Ready), j.Status.Succeeded, j.Status.Failed)
		}
	}
	pods, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s node=%q phase=%s deleting=%v\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil)
		}
	}
	return b.String()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
