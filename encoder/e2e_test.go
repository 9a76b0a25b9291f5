package encoder_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/dispatcher"
	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

var secret = []byte("encoder-e2e-secret-encoder-e2e-secret-0123")

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// mpegflowBinary builds the real binary once per test run.
func mpegflowBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mpegflow-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mpegflow")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/mpegflow").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// rig is a real coordinator on Postgres, Redis and a signature-checking S3.
type rig struct {
	t         *testing.T
	store     *store.Store
	queue     *queue.Queue
	objects   *objstore.Store
	org       store.Organization
	addr      string
	cfg       dispatcher.Config
	coord     *dispatcher.Coordinator
	metrics   *telemetry.Metrics // the running coordinator's
	stopCoord func() error       // stops the running coordinator; nil once stopped
	pool      string             // the pool jobs are queued on and pods serve (the shared pool unless a test says)
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, dispatcher.Config{Lease: 20 * time.Second})
}

// newRigWith is newRig with the coordinator's lease and backoff of cfg.
func newRigWith(t *testing.T, cfg dispatcher.Config) *rig {
	t.Helper()
	cfg.Secret, cfg.HeartbeatInterval = secret, 300*time.Millisecond
	st := store.New(testenv.Postgres(t))
	rdb, prefix := testenv.Redis(t)
	objects, err := objstore.New(t.Context(), testenv.S3(t))
	require.NoError(t, err)
	b, err := st.BootstrapOrg(t.Context(), "E2E", "e2e@example.com", auth.Owner)
	require.NoError(t, err)
	r := &rig{t: t, store: st, queue: queue.New(rdb, queue.NewKeys(prefix)), objects: objects, org: b.Org, addr: "127.0.0.1:0", cfg: cfg, pool: apiv1.DefaultPoolID}
	r.startCoordinator()
	t.Cleanup(func() {
		if r.stopCoord != nil {
			require.NoError(t, r.stopCoord())
		}
	})
	return r
}

// startCoordinator serves a new coordinator on r.addr (a free port the
// first time, the same port after a restart).
func (r *rig) startCoordinator() {
	r.t.Helper()
	r.metrics = telemetry.New()
	coord, err := dispatcher.New(r.cfg, r.store, r.queue, r.objects, events.NewBus(r.queue, time.Now), r.metrics, slog.New(slog.DiscardHandler))
	require.NoError(r.t, err)
	r.coord = coord
	ln, err := net.Listen("tcp", r.addr)
	require.NoError(r.t, err)
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- coord.Serve(ctx, ln) }()
	r.stopCoord = func() error {
		r.stopCoord = nil
		cancel()
		return <-done
	}
}

// clip makes a test clip with FFmpeg's lavfi sources.
func clip(t *testing.T, size string, seconds int, audio bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=25:duration=%d", size, seconds)}
	if audio {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds), "-c:a", "aac")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest", "-y", out)
	b, err := exec.Command("ffmpeg", args...).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// asset uploads a file through a presigned PUT and records the asset.
func (r *rig) asset(file string) uuid.UUID {
	r.t.Helper()
	ctx := context.Background()
	a, err := r.store.CreateAsset(ctx, r.org.ID, filepath.Base(file), "video/mp4", nil, func(id uuid.UUID) string {
		return "orgs/" + r.org.ID.String() + "/assets/" + id.String() + "/source"
	})
	require.NoError(r.t, err)
	up, err := r.objects.PresignPut(ctx, a.ObjectKey, "video/mp4")
	require.NoError(r.t, err)
	body, err := os.ReadFile(file)
	require.NoError(r.t, err)
	req, err := http.NewRequest(http.MethodPut, up.URL, bytes.NewReader(body))
	require.NoError(r.t, err)
	req.Header.Set("Content-Type", "video/mp4")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	resp.Body.Close()
	require.Equal(r.t, http.StatusOK, resp.StatusCode)
	return a.ID
}

func (r *rig) job(input string, assetID *uuid.UUID, workflow string) store.Job {
	r.t.Helper()
	spec, ok := encodespec.Builtin(workflow)
	require.True(r.t, ok)
	return r.jobSpec(input, assetID, spec)
}

// jobSpec queues a job with an inline spec, normalized and validated as the
// API server does.
func (r *rig) jobSpec(input string, assetID *uuid.UUID, spec encodespec.Spec) store.Job {
	r.t.Helper()
	spec.Normalize()
	require.NoError(r.t, spec.Validate())
	raw, err := json.Marshal(spec)
	require.NoError(r.t, err)
	nj := store.NewJob{OrgID: r.org.ID, PoolID: r.pool, Lane: "live", MaxAttempts: 3, Spec: raw, Metadata: json.RawMessage(`{}`), InputAssetID: assetID}
	if assetID == nil {
		nj.InputURL = &input
	}
	j, _, err := r.store.CreateJob(context.Background(), nj)
	require.NoError(r.t, err)
	require.NoError(r.t, r.queue.Push(context.Background(), r.pool, "live", queue.Tenant{Org: r.org.ID.String(), Weight: 1}, j.ID.String(), 0))
	return j
}

// encode starts `mpegflow encode` as a pod would run it.
func (r *rig) encode(scratch string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	r.t.Helper()
	cmd := exec.Command(mpegflowBinary(r.t), "encode")
	cmd.Env = append(os.Environ(),
		"MPEGFLOW_COORDINATOR="+r.addr, "MPEGFLOW_POOL="+r.pool, "MPEGFLOW_LANE=live",
		"MPEGFLOW_WORKER_TOKEN="+auth.WorkerToken(secret, r.pool), "MPEGFLOW_POD_NAME=pod-"+uuid.NewString()[:8],
		"MPEGFLOW_SCRATCH_DIR="+scratch, "MPEGFLOW_CLAIM_WAIT=2s")
	cmd.Env = append(cmd.Env, extra...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(r.t, cmd.Start())
	return cmd, &logs
}

// completedBy requires the job completed by the pod.
func (r *rig) completedBy(id uuid.UUID, pod string, logs *bytes.Buffer) {
	r.t.Helper()
	done := r.get(id)
	require.Equal(r.t, store.JobCompleted, done.Status, "the job was taken by pod %s: %v; %s", pod, done.Error, logs)
	require.NotNil(r.t, done.WorkerID)
	require.Equal(r.t, pod, *done.WorkerID)
}

// dedicatedPool makes a pool of r's organization named name the one jobs
// are queued on and pods serve.
func (r *rig) dedicatedPool(name string) {
	r.t.Helper()
	set := store.DefaultPoolSettings()
	set.Name = name
	pool, err := r.store.CreatePool(r.t.Context(), r.org.ID, set)
	require.NoError(r.t, err)
	r.pool = pool.ID
}

// calls counts the running coordinator's calls of each method.
func (r *rig) calls(methods ...string) []float64 {
	n := make([]float64, len(methods))
	for i, m := range methods {
		n[i] = promtest.ToFloat64(r.metrics.GRPCRequests.WithLabelValues(m))
	}
	return n
}

// exitsWithin waits up to d for cmd, a pod the test started, to exit, and
// answers how it exited; a pod still running then is killed, and the test
// fails with why and the pod's logs.
func exitsWithin(t *testing.T, cmd *exec.Cmd, logs *bytes.Buffer, d time.Duration, why string) error {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		t.Fatalf("%s: %s", why, logs)
		return nil
	}
}

func (r *rig) get(id uuid.UUID) store.Job {
	r.t.Helper()
	j, err := r.store.GetJob(context.Background(), r.org.ID, id)
	require.NoError(r.t, err)
	return j
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "scratch directory left behind files")
}

// TestEncodeEndToEnd runs `mpegflow encode` on a job of each segmented
// built-in workflow: completed, every output in storage, the manifests
// among them, nothing above the source's size.
func TestEncodeEndToEnd(t *testing.T) {
	t.Parallel()
	for workflow, manifests := range map[string][]string{
		"hls-ladder":  {"master.m3u8", "360p/index.m3u8"},
		"cmaf-ladder": {"master.m3u8", "manifest.mpd", "media_0.m3u8", "media_1.m3u8"},
	} {
		t.Run(workflow, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			asset := r.asset(clip(t, "640x360", 3, true))
			job := r.job("", &asset, workflow)
			scratch := t.TempDir()
			cmd, logs := r.encode(scratch)
			require.NoError(t, cmd.Wait(), "%s", logs)

			done := r.get(job.ID)
			require.Equal(t, store.JobCompleted, done.Status, "error: %v; logs: %s", done.Error, logs)
			assert.InDelta(t, 1.0, done.Progress, 1e-6)
			var outs []struct {
				Name, Kind, Key string
				SizeBytes       int64 `json:"size_bytes"`
			}
			require.NoError(t, json.Unmarshal(done.Outputs, &outs))
			names := map[string]bool{}
			for _, o := range outs {
				names[o.Name] = true
				ok, err := r.objects.Exists(context.Background(), o.Key)
				require.NoError(t, err)
				assert.True(t, ok, "output %s is in storage", o.Name)
			}
			for _, m := range manifests {
				assert.True(t, names[m], "%s is an output: %v", m, names)
			}
			for n := range names {
				assert.False(t, strings.HasPrefix(n, "720p") || strings.HasPrefix(n, "1080p"), "no rendition above the 360p source: %s", n)
			}
			var usage store.Usage
			require.NoError(t, json.Unmarshal(done.Usage, &usage))
			assert.InDelta(t, 3.0, usage.OutputSeconds, 0.5)
			assert.Positive(t, usage.EncodeSeconds)
			emptyDir(t, scratch)
		})
	}
}

// An encrypted job goes out encrypted: the claim brings the job's key, the
// segments in storage are AES-128 ciphertext that the stored key (sealed
// under the server secret) and the playlist's IV turn back into fMP4, and
// the init segments record the method and key ID.
func TestEncodeEncryptedEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "640x360", 3, true))
	spec := encodespec.Spec{
		Renditions: []encodespec.Rendition{{Codec: encodespec.CodecH264, Height: 240, BitrateKbps: 300, Preset: "ultrafast"}},
		Audio:      &encodespec.Audio{}, Packaging: encodespec.PackagingHLS, SegmentSeconds: 1,
		Encryption: &encodespec.Encryption{Method: encodespec.EncryptAES128},
	}
	job := r.jobSpec("", &asset, spec)
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch)
	require.NoError(t, cmd.Wait(), "%s", logs)
	done := r.get(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v; logs: %s", done.Error, logs)

	stored, err := r.store.ContentKey(t.Context(), r.org.ID, job.ID)
	require.NoError(t, err)
	sealer, err := contentkey.NewSealer(secret)
	require.NoError(t, err)
	key, err := sealer.Open(job.ID, stored.SealedKey)
	require.NoError(t, err)
	require.NotContains(t, logs.String(), hex.EncodeToString(key), "the pod does not log the key")

	var outs []struct {
		Name, Kind, Key string
		Attributes      map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(done.Outputs, &outs))
	keys := map[string]string{}
	inits := 0
	for _, o := range outs {
		keys[o.Name] = o.Key
		if strings.HasSuffix(o.Name, "/init.mp4") {
			inits++
			assert.Equal(t, encodespec.EncryptAES128, o.Attributes["encryption.method"], o.Name)
			assert.Equal(t, stored.KID.String(), o.Attributes["encryption.kid"], o.Name)
		}
	}
	require.Equal(t, 2, inits, "the video and the audio rendition")

	read := func(name string) []byte {
		rc, _, err := r.objects.OpenFrom(t.Context(), keys[name], 0, "")
		require.NoError(t, err, name)
		defer rc.Close()
		data, err := io.ReadAll(rc)
		require.NoError(t, err)
		return data
	}
	playlist := string(read("240p/index.m3u8"))
	m := regexp.MustCompile(`#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})\n#EXTINF:[0-9.]+,\n(seg_\d+\.m4s)`).FindAllStringSubmatch(playlist, -1)
	require.NotEmpty(t, m, playlist)
	require.Equal(t, "http://localhost:8080/v1/jobs/"+job.ID.String()+"/key", m[0][1], "the key URI is on the API")
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	for _, seg := range m {
		iv, err := hex.DecodeString(seg[2])
		require.NoError(t, err)
		data := read("240p/" + seg[3])
		require.Zero(t, len(data)%aes.BlockSize, seg[3])
		require.NotEqual(t, "styp", string(data[4:8]), "%s is not a clear fMP4 segment", seg[3])
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(data, data)
		require.Equal(t, "styp", string(data[4:8]), "%s decrypts to an fMP4 segment with the stored key", seg[3])
		pad := int(data[len(data)-1])
		require.Equal(t, bytes.Repeat([]byte{byte(pad)}, pad), data[len(data)-pad:], "PKCS#7 padding")
	}
	emptyDir(t, scratch)
}

// A per-title job records on each video output the bitrate the analysis
// chose, never above the rendition's own, the target and the reason.
func TestEncodePerTitleEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "640x360", 4, true))
	spec, ok := encodespec.Builtin("hls-ladder")
	require.True(t, ok)
	spec.Ladder = &encodespec.Ladder{Mode: encodespec.LadderPerTitle}
	job := r.jobSpec("", &asset, spec)
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch)
	require.NoError(t, cmd.Wait(), "%s", logs)

	done := r.get(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v; logs: %s", done.Error, logs)
	var outs []struct {
		Name, Kind string
		Attributes map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(done.Outputs, &outs))
	videos := 0
	for _, o := range outs {
		if o.Kind != apiv1.OutputVideo || !strings.HasSuffix(o.Name, "init.mp4") {
			continue
		}
		videos++
		a := o.Attributes
		assert.Equal(t, "42", a[ffmpeg.AttrPerTitleTarget], o.Name)
		chosen, err := strconv.Atoi(a[ffmpeg.AttrPerTitleBitrate])
		require.NoError(t, err, "%s: %v", o.Name, a)
		ceiling, err := strconv.Atoi(a[ffmpeg.AttrPerTitleCeiling])
		require.NoError(t, err, "%s: %v", o.Name, a)
		assert.LessOrEqual(t, chosen, ceiling, o.Name)
		assert.GreaterOrEqual(t, chosen, 50, o.Name)
		assert.NotEmpty(t, a[ffmpeg.AttrPerTitleReason], o.Name)
	}
	assert.Positive(t, videos, "outputs: %+v", outs)
	emptyDir(t, scratch)
}

// A storyboard is uploaded and recorded on the job like the stills: the
// index with its grid, each sheet with its size.
func TestEncodeStoryboardEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "640x360", 12, false))
	job := r.jobSpec("", &asset, encodespec.Spec{Storyboard: &encodespec.Storyboard{}}) // defaults: 5 s, 160 px, 10x10
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch)
	require.NoError(t, cmd.Wait(), "%s", logs)

	done := r.get(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v; logs: %s", done.Error, logs)
	var outs []struct {
		Name, Kind, Key string
		ContentType     string            `json:"content_type"`
		Attributes      map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(done.Outputs, &outs))
	got := map[string]int{}
	for _, o := range outs {
		switch o.Kind {
		case apiv1.OutputStoryboard:
			assert.Equal(t, "storyboard/storyboard.vtt", o.Name)
			assert.Equal(t, "text/vtt", o.ContentType)
			assert.Equal(t, map[string]string{
				"interval_seconds": "5", "tiles": "3", "sheets": "1", "tile_width": "160", "tile_height": "90", "columns": "3", "rows": "1",
			}, o.Attributes)
		case apiv1.OutputStoryboardSheet:
			assert.Equal(t, "storyboard/sheet-1.jpg", o.Name)
			assert.Equal(t, map[string]string{"width": "480", "height": "90"}, o.Attributes)
		default:
			continue
		}
		got[o.Kind]++
		ok, err := r.objects.Exists(context.Background(), o.Key)
		require.NoError(t, err)
		assert.True(t, ok, "output %s is in storage", o.Name)
	}
	assert.Equal(t, map[string]int{apiv1.OutputStoryboard: 1, apiv1.OutputStoryboardSheet: 1}, got)
	emptyDir(t, scratch)
}

func TestEncodeNoJobExitsAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	scratch := t.TempDir()
	start := time.Now()
	cmd, logs := r.encode(scratch, "MPEGFLOW_CLAIM_WAIT=0s")
	require.NoError(t, cmd.Wait(), "%s", logs)
	t.Logf("exited after %s with no job", time.Since(start))
	emptyDir(t, scratch)
}

func TestEncodeBadInputsFailCleanly(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.mp4")
	require.NoError(t, os.WriteFile(text, []byte("this is not a video\n"), 0o644))
	empty := filepath.Join(dir, "empty.mp4")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	full, err := os.ReadFile(clip(t, "320x180", 2, false))
	require.NoError(t, err)
	truncated := filepath.Join(dir, "truncated.mp4")
	require.NoError(t, os.WriteFile(truncated, full[:len(full)/3], 0o644))
	// An upload that is an HLS playlist naming a file on the encoder's disk
	// (another tenant's, in `mpegflow dev`): FFmpeg would follow it.
	playlist := filepath.Join(dir, "holiday.mp4")
	require.NoError(t, os.WriteFile(playlist, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile:"+
		clip(t, "208x112", 2, false)+"\n#EXT-X-ENDLIST\n"), 0o644))
	srv := http.Server{Handler: http.NotFoundHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)

	// Customer URLs on this machine's loopback: allowed only with the
	// development allowlist; without it the encoder refuses to connect.
	devGuard := []string{"MPEGFLOW_ALLOW_HTTP=true", "MPEGFLOW_EGRESS_ALLOW=127.0.0.1/32"}
	cases := []struct {
		name  string
		job   func() store.Job
		words string
		env   []string
	}{
		{"text renamed mp4", func() store.Job { a := r.asset(text); return r.job("", &a, "mp4-720p") }, "", nil},
		{"zero-length file", func() store.Job { a := r.asset(empty); return r.job("", &a, "mp4-720p") }, "empty", nil},
		{"truncated file", func() store.Job { a := r.asset(truncated); return r.job("", &a, "mp4-720p") }, "", nil},
		{"input answers 404", func() store.Job { return r.job("http://"+ln.Addr().String()+"/missing.mp4", nil, "mp4-720p") }, "404", devGuard},
		{"input on loopback refused", func() store.Job { return r.job("http://"+ln.Addr().String()+"/missing.mp4", nil, "mp4-720p") },
			"the input URL was refused: 127.0.0.1 is a loopback address", []string{"MPEGFLOW_ALLOW_HTTP=true"}},
		{"localhost input refused", func() store.Job { return r.job("http://localhost:"+port+"/missing.mp4", nil, "mp4-720p") },
			"is a loopback address", []string{"MPEGFLOW_ALLOW_HTTP=true"}},
		{"plain http refused", func() store.Job { return r.job("http://"+ln.Addr().String()+"/missing.mp4", nil, "mp4-720p") },
			"plain http is not accepted", nil},
		{"playlist naming a local file", func() store.Job { a := r.asset(playlist); return r.job("", &a, "mp4-720p") },
			"unsupported input container (hls)", nil},
		{"input host not found", func() store.Job { return r.job("https://media.example.invalid/in.mp4", nil, "mp4-720p") },
			"input host not found: media.example.invalid", nil},
		{"file: input URL", func() store.Job { return r.job("file://"+playlist, nil, "mp4-720p") }, `scheme "file" is not accepted`, nil},
		{"subfile: input URL", func() store.Job { return r.job("subfile,,start,0,end,0,,:"+playlist, nil, "mp4-720p") }, "the input URL is not usable", nil},
	}
	for _, tc := range cases {
		job := tc.job()
		scratch := t.TempDir()
		cmd, logs := r.encode(scratch, tc.env...)
		require.NoError(t, cmd.Wait(), "%s: %s", tc.name, logs)
		got := r.get(job.ID)
		require.Equal(t, store.JobFailed, got.Status, "%s: logs %s", tc.name, logs)
		require.NotNil(t, got.Error)
		assert.NotContains(t, *got.Error, "\n", "%s: one line", tc.name)
		assert.Contains(t, *got.Error, tc.words, tc.name)
		assert.Equal(t, 1, got.Attempts, "%s: not retried: retrying cannot help", tc.name)
		assert.JSONEq(t, `[]`, string(got.Outputs), "%s: no outputs reported", tc.name)
		emptyDir(t, scratch)
	}
}

// runningEncode starts a long encode and waits until the job is running.
func (r *rig) runningEncode(t *testing.T) (store.Job, *exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	asset := r.asset(clip(t, "1280x720", 60, true))
	job := r.job("", &asset, "hls-ladder")
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch)
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(scratch, "claimed"))
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the encoder writes its readiness file once it holds the claim: %s", logs)
	require.Eventually(t, func() bool { return r.get(job.ID).Progress > 0 }, 30*time.Second, 50*time.Millisecond, "progress reported: %s", logs)
	return job, cmd, logs, scratch
}

func TestEncodeCancelStopsFFmpeg(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	job, cmd, logs, scratch := r.runningEncode(t)
	_, err := r.store.CancelJob(context.Background(), r.org.ID, job.ID)
	require.NoError(t, err)
	require.NoError(t, exitsWithin(t, cmd, logs, 15*time.Second, "the encoder did not stop after cancel"), "%s", logs)
	assert.Equal(t, store.JobCancelled, r.get(job.ID).Status)
	emptyDir(t, scratch)
}

func TestEncodeSIGTERMHandsTheJobBack(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	job, cmd, logs, scratch := r.runningEncode(t)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	start := time.Now()
	_ = exitsWithin(t, cmd, logs, 10*time.Second, "the encoder did not exit within 10 s of SIGTERM") // its exit status is not the point
	t.Logf("exited %s after SIGTERM", time.Since(start))
	got := r.get(job.ID)
	assert.Equal(t, store.JobQueued, got.Status, "preempted jobs go straight back to the queue: %s", logs)
	assert.Equal(t, 0, got.Attempts, "a preemption does not use an attempt")
	n, err := r.queue.Len(context.Background(), "default", "live")
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	emptyDir(t, scratch)
}

// TestFleetCountsLiveEncodeProcesses: the fleet figures (what
// mpegflow_worker_count and GET /v1/workers read) count the encode
// processes that are alive. Pods waiting for work are online; each one that
// exits (here: stopped by SIGTERM while it waits, as Kubernetes stops a
// pod) says goodbye, so its worker is offline as soon as its process is
// gone. No Stale Worker Sweeper runs in this rig.
func TestFleetCountsLiveEncodeProcesses(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	fleet := func() map[string]int {
		_, ws, err := r.store.FleetCounts(ctx)
		require.NoError(t, err)
		return ws["default"]
	}
	const pods = 3
	type proc struct {
		cmd  *exec.Cmd
		logs *bytes.Buffer
	}
	var procs []proc
	for range pods {
		// They wait far longer than the test takes: each stops only when
		// told to.
		cmd, logs := r.encode(t.TempDir(), "MPEGFLOW_CLAIM_WAIT=30s")
		procs = append(procs, proc{cmd, logs})
	}
	require.Eventually(t, func() bool { return fleet()[store.WorkerOnline] == pods }, 20*time.Second, 50*time.Millisecond,
		"every waiting pod is an online worker")

	for i, p := range procs {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, p.cmd.Wait(), "%s", p.logs)
		got := fleet()
		assert.Equal(t, pods-i-1, got[store.WorkerOnline], "online workers once %d of %d processes exited", i+1, pods)
		assert.Equal(t, i+1, got[store.WorkerOffline], "offline workers once %d of %d processes exited", i+1, pods)
	}
}

// TestWarmPodKeepsWaiting: a pod of a pre-warmed pool (MPEGFLOW_IDLE_WAIT
// longer than its claim wait) long-polls again and again instead of exiting
// after one claim wait, and takes a job that arrives later; a pod told the
// pool is paused (the coordinator answers at once) exits without waiting
// out its idle time.
func TestWarmPodKeepsWaiting(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	worker := func(pod string) store.Worker {
		ws, err := r.store.ListWorkers(ctx, r.org.ID, true)
		require.NoError(t, err)
		for _, w := range ws {
			if w.ID == pod {
				return w
			}
		}
		return store.Worker{}
	}

	asset := r.asset(clip(t, "320x240", 1, false))
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch, "MPEGFLOW_POD_NAME=warm-pod", "MPEGFLOW_CLAIM_WAIT=1s", "MPEGFLOW_IDLE_WAIT=60s")
	// Every claim records the worker's heartbeat; three distinct ones mean
	// the pod asked again after its claim wait had passed.
	seen := map[time.Time]bool{}
	require.Eventually(t, func() bool {
		if w := worker("warm-pod"); !w.LastHeartbeatAt.IsZero() {
			seen[w.LastHeartbeatAt] = true
		}
		return len(seen) >= 3
	}, 30*time.Second, 20*time.Millisecond, "the warm pod stopped asking for work: %s", logs)
	require.Nil(t, cmd.ProcessState, "the warm pod is still running")

	job := r.job("", &asset, "mp4-720p")
	require.NoError(t, cmd.Wait(), "%s", logs)
	r.completedBy(job.ID, "warm-pod", logs)

	require.NoError(t, r.queue.SetPaused(ctx, "default", true))
	paused, plogs := r.encode(t.TempDir(), "MPEGFLOW_CLAIM_WAIT=30s", "MPEGFLOW_IDLE_WAIT=1h")
	require.NoError(t, exitsWithin(t, paused, plogs, 25*time.Second, "a pod of a paused pool kept waiting (it should exit at once)"), "%s", plogs)
}

// TestWarmPodClaimsAcrossCoordinatorRestart: a warm pod long-polling a
// coordinator that stops (a rolling update of the API) is told Unavailable
// at once, claims again until a coordinator answers on the address, and
// runs the job submitted after the restart.
func TestWarmPodClaimsAcrossCoordinatorRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "320x240", 1, false))
	cmd, logs := r.encode(t.TempDir(), "MPEGFLOW_POD_NAME=warm-pod", "MPEGFLOW_CLAIM_WAIT=30s", "MPEGFLOW_IDLE_WAIT=2m")
	require.Eventually(t, func() bool {
		ws, err := r.store.ListWorkers(t.Context(), r.org.ID, true)
		return err == nil && slices.ContainsFunc(ws, func(w store.Worker) bool { return w.ID == "warm-pod" })
	}, 30*time.Second, 20*time.Millisecond, "the warm pod registered (it is long-polling): %s", logs)

	require.NoError(t, r.stopCoord())
	r.startCoordinator()
	job := r.job("", &asset, "mp4-720p")
	require.NoError(t, cmd.Wait(), "%s", logs)
	r.completedBy(job.ID, "warm-pod", logs)
	require.Contains(t, logs.String(), "claiming again", "the pod claimed again after the coordinator stopped")
}

// podPastItsFirstJob starts pod, a pod of two jobs with a 30 s claim wait
// on a dedicated pool named pool, on one queued job, and returns once
// that job's completion has committed: the pod's report then waits for
// its next job (on the pod's stream of reports), or is about to. It
// returns the job, its input asset (for more jobs), and the running pod
// with its logs.
func (r *rig) podPastItsFirstJob(pool, pod string) (first store.Job, asset uuid.UUID, cmd *exec.Cmd, logs *bytes.Buffer) {
	r.t.Helper()
	r.dedicatedPool(pool)
	asset = r.asset(clip(r.t, "320x240", 1, false))
	first = r.job("", &asset, "mp4-720p")
	cmd, logs = r.encode(r.t.TempDir(), "MPEGFLOW_POD_NAME="+pod, "MPEGFLOW_JOBS_PER_POD=2", "MPEGFLOW_CLAIM_WAIT=30s")
	require.Eventually(r.t, func() bool { return r.get(first.ID).Status == store.JobCompleted }, time.Minute, 20*time.Millisecond,
		"the first job completed: %s", logs)
	return first, asset, cmd, logs
}

// TestPodWaitsForItsNextJobInItsReport: a pod of two jobs whose first
// completes with nothing queued waits for its next in the same call
// (a report on its stream, Reports) and runs the job submitted meanwhile:
// one Claim, one report, and a plain Complete for its last job.
func TestPodWaitsForItsNextJobInItsReport(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first, asset, cmd, logs := r.podPastItsFirstJob("waits", "pod-of-two")
	second := r.job("", &asset, "mp4-720p")
	require.NoError(t, cmd.Wait(), "%s", logs)

	r.completedBy(first.ID, "pod-of-two", logs)
	r.completedBy(second.ID, "pod-of-two", logs)
	assert.Equal(t, 1, strings.Count(logs.String(), `"msg":"next job claimed by the report"`), "%s", logs)
	assert.Equal(t, []float64{1, 1, 1}, r.calls("Claim", "Reports", "Complete"),
		"Claim, Reports, Complete: the second job came in the first report")
}

// TestPodReportsAgainAfterACoordinatorRestart: a pod keeps its stream of
// reports from one job to the next; when the coordinator restarts while
// the pod encodes (a rolling update), the stream it kept has ended, and
// the pod's next report goes again on a new stream, to the new
// coordinator, instead of failing the pod. Three jobs, all completed by
// the pod: the first's report on the first coordinator, the second's on
// the second (found dead, then made again), the last's a Complete.
func TestPodReportsAgainAfterACoordinatorRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.dedicatedPool("restarts")
	short := r.asset(clip(t, "320x240", 1, false))
	long := r.asset(clip(t, "1280x720", 10, false))
	first := r.job("", &short, "mp4-720p")
	cmd, logs := r.encode(t.TempDir(), "MPEGFLOW_POD_NAME=pod-of-three", "MPEGFLOW_JOBS_PER_POD=3", "MPEGFLOW_CLAIM_WAIT=30s")
	require.Eventually(t, func() bool { return r.get(first.ID).Status == store.JobCompleted }, time.Minute, 20*time.Millisecond,
		"the first job completed: %s", logs)
	second := r.job("", &long, "mp4-720p")
	require.Eventually(t, func() bool { return r.get(second.ID).Progress > 0 }, time.Minute, 20*time.Millisecond,
		"the second job, which came in the first report, is encoding: %s", logs)
	before := r.calls("Reports", "Complete")
	require.NoError(t, r.stopCoord())
	r.startCoordinator()
	require.Equal(t, store.JobRunning, r.get(second.ID).Status, "the restart was over before the second job's report: %s", logs)
	third := r.job("", &short, "mp4-720p")
	require.NoError(t, cmd.Wait(), "%s", logs)

	for _, j := range []store.Job{first, second, third} {
		r.completedBy(j.ID, "pod-of-three", logs)
	}
	assert.Equal(t, []float64{1, 0}, before, "the first job's report, on the first coordinator")
	assert.Equal(t, []float64{1, 1}, r.calls("Reports", "Complete"), "the second's report (again, on a new stream) and the last's Complete, on the second")
	assert.NotContains(t, logs.String(), "claiming the next with it failed", "%s", logs)
}

// TestPodSIGTERMWhileItsReportWaits: SIGTERM reaching a pod whose report
// waits for its next job (or is about to: the first job's completion has
// committed) ends the wait, not the completion: the job stays completed
// by the pod, and the pod exits well before its 30 s claim wait, without
// a warning, having said goodbye (its worker offline).
func TestPodSIGTERMWhileItsReportWaits(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first, _, cmd, logs := r.podPastItsFirstJob("stops", "stopped-pod")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, exitsWithin(t, cmd, logs, 20*time.Second, "the pod waited out its report's claim after SIGTERM"), "%s", logs)

	r.completedBy(first.ID, "stopped-pod", logs)
	assert.NotContains(t, logs.String(), "claiming the next with it failed", "a stopped wait is no failure")
	assert.Equal(t, []float64{1, 1, 0}, r.calls("Claim", "Reports", "Complete"), "the report waited on the pod's stream of reports")
	_, ws, err := r.store.FleetCounts(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[string]int{store.WorkerOffline: 1}, ws[r.pool], "the stopped pod said goodbye")
}

// TestPodRunsJobsPerPod: a pod of a dedicated pool told to run three jobs
// runs three of the four queued, one after another, each completed by it
// with its outputs in storage, and exits leaving nothing in its scratch
// directory; the fourth is still queued for the next pod, which (told
// nothing) runs one job. A pod of the shared pool runs one job whatever it
// is told: its pods serve every organization.
func TestPodRunsJobsPerPod(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.dedicatedPool("chunks")
	asset := r.asset(clip(t, "320x240", 1, false))
	jobs := make([]store.Job, 4)
	for i := range jobs {
		jobs[i] = r.job("", &asset, "mp4-720p")
	}

	scratch := t.TempDir()
	cmd, logs := r.encode(scratch, "MPEGFLOW_POD_NAME=pod-of-three", "MPEGFLOW_JOBS_PER_POD=3")
	require.NoError(t, cmd.Wait(), "%s", logs)
	byStatus := map[string][]uuid.UUID{}
	for _, j := range jobs {
		got := r.get(j.ID)
		byStatus[got.Status] = append(byStatus[got.Status], j.ID)
		if got.Status == store.JobCompleted {
			r.completedBy(j.ID, "pod-of-three", logs)
			var outs []struct{ Key string }
			require.NoError(t, json.Unmarshal(got.Outputs, &outs))
			require.NotEmpty(t, outs)
			for _, o := range outs {
				ok, err := r.objects.Exists(t.Context(), o.Key)
				require.NoError(t, err)
				assert.True(t, ok, "output %s of job %s is in storage", o.Key, j.ID)
			}
		}
	}
	require.Len(t, byStatus[store.JobCompleted], 3, "the pod ran three jobs: %v; %s", byStatus, logs)
	require.Len(t, byStatus[store.JobQueued], 1, "the fourth waits for the next pod: %v", byStatus)
	assert.Equal(t, 2, strings.Count(logs.String(), `"msg":"next job claimed by the report"`), "the first two reports claimed the next job: %s", logs)
	// The first report waits for its next (Reports), which was
	// queued; so the second claims with Complete, as does the last report
	// (claiming nothing).
	assert.Equal(t, []float64{1, 1, 2}, r.calls("Claim", "Reports", "Complete"), "Claim, Reports, Complete")
	emptyDir(t, scratch)

	next, nlogs := r.encode(scratch, "MPEGFLOW_POD_NAME=pod-of-one")
	require.NoError(t, next.Wait(), "%s", nlogs)
	r.completedBy(byStatus[store.JobQueued][0], "pod-of-one", nlogs)
	emptyDir(t, scratch)

	r.pool = apiv1.DefaultPoolID
	shared := []store.Job{r.job("", &asset, "mp4-720p"), r.job("", &asset, "mp4-720p")}
	one, slogs := r.encode(scratch, "MPEGFLOW_POD_NAME=shared-pod", "MPEGFLOW_JOBS_PER_POD=3")
	require.NoError(t, one.Wait(), "%s", slogs)
	statuses := []string{r.get(shared[0].ID).Status, r.get(shared[1].ID).Status}
	assert.ElementsMatch(t, []string{store.JobCompleted, store.JobQueued}, statuses, "a pod of the shared pool ran one job: %s", slogs)
}
