package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestBadInput: malformed requests about a held job answer InvalidArgument
// and change nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 2)[0]
	held := w.mustClaim(t, "pod-1")
	before := e.snapshot(id, store.DefaultPoolID)
	tok := held.GetClaimToken()

	presign := func(names ...string) func(context.Context) error {
		return func(ctx context.Context) error {
			files := make([]*coordinatorv1.OutputFile, len(names))
			for i, n := range names {
				files[i] = &coordinatorv1.OutputFile{Name: n, ContentType: "video/mp4"}
			}
			_, err := w.client.PresignOutputs(w.ctx(ctx, tok), &coordinatorv1.PresignOutputsRequest{JobId: held.GetId(), Files: files})
			return err
		}
	}
	complete := func(req *coordinatorv1.CompleteRequest) func(context.Context) error {
		return func(ctx context.Context) error {
			req.JobId = held.GetId()
			_, err := w.client.Complete(w.ctx(ctx, tok), req)
			return err
		}
	}
	output := func(name string) *coordinatorv1.CompleteRequest {
		return &coordinatorv1.CompleteRequest{Outputs: []*coordinatorv1.Output{{Name: name, Kind: "video", SizeBytes: 1, ContentType: "video/mp4"}}}
	}
	heartbeat := func(p float64) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := w.heartbeat(ctx, held, p)
			return err
		}
	}
	claim := func(req *coordinatorv1.ClaimRequest) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := w.client.Claim(w.ctx(ctx, ""), req)
			return err
		}
	}

	tests := []struct {
		name string
		call func(context.Context) error
	}{
		{"heartbeat malformed job id", func(ctx context.Context) error {
			_, err := w.client.Heartbeat(w.ctx(ctx, tok), &coordinatorv1.HeartbeatRequest{JobId: "job-1", Progress: 0.5})
			return err
		}},
		{"complete malformed job id", func(ctx context.Context) error {
			_, err := w.client.Complete(w.ctx(ctx, tok), &coordinatorv1.CompleteRequest{JobId: "1; DROP TABLE jobs"})
			return err
		}},
		{"fail malformed job id", func(ctx context.Context) error {
			_, err := w.client.Fail(w.ctx(ctx, tok), &coordinatorv1.FailRequest{JobId: "", Error: "x"})
			return err
		}},
		{"presign malformed job id", func(ctx context.Context) error {
			_, err := w.client.PresignOutputs(w.ctx(ctx, tok), &coordinatorv1.PresignOutputsRequest{JobId: "../jobs",
				Files: []*coordinatorv1.OutputFile{{Name: "a.mp4", ContentType: "video/mp4"}}})
			return err
		}},
		{"progress NaN", heartbeat(math.NaN())},
		{"progress 2", heartbeat(2)},
		{"progress negative", heartbeat(-0.1)},
		{"progress infinite", heartbeat(math.Inf(1))},
		{"presign parent directory", presign("../other-job/out.mp4")},
		{"presign parent inside the path", presign("720p/../../escape.mp4")},
		{"presign absolute path", presign("/etc/passwd")},
		{"presign empty name", presign("")},
		{"presign double slash", presign("720p//seg.m4s")},
		{"presign dot segment", presign("./out.mp4")},
		{"presign no files", presign()},
		{"presign bad content type", func(ctx context.Context) error {
			_, err := w.client.PresignOutputs(w.ctx(ctx, tok), &coordinatorv1.PresignOutputsRequest{JobId: held.GetId(),
				Files: []*coordinatorv1.OutputFile{{Name: "a.mp4", ContentType: "not a type"}}})
			return err
		}},
		{"complete parent directory", complete(output("../x.mp4"))},
		{"complete dotdot in name", complete(output("a..b/..x.mp4"))},
		{"complete absolute path", complete(output("/tmp/x.mp4"))},
		{"complete output listed twice", complete(&coordinatorv1.CompleteRequest{Outputs: []*coordinatorv1.Output{{Name: "a.mp4"}, {Name: "a.mp4"}}})},
		{"complete negative size", complete(&coordinatorv1.CompleteRequest{Outputs: []*coordinatorv1.Output{{Name: "a.mp4", SizeBytes: -1}}})},
		{"complete NaN usage", complete(&coordinatorv1.CompleteRequest{Usage: &coordinatorv1.Usage{EncodeSeconds: math.NaN()}})},
		{"complete unknown accelerator", complete(&coordinatorv1.CompleteRequest{Usage: &coordinatorv1.Usage{Accelerator: "tpu"}})},
		{"fail without an error message", func(ctx context.Context) error {
			_, err := w.fail(ctx, held, "   ", true)
			return err
		}},
		{"claim without pod", claim(&coordinatorv1.ClaimRequest{Pool: store.DefaultPoolID})},
		{"claim unknown lane", claim(&coordinatorv1.ClaimRequest{Pool: store.DefaultPoolID, Pod: "pod-2", Lane: "express"})},
		{"claim negative wait", claim(&coordinatorv1.ClaimRequest{Pool: store.DefaultPoolID, Pod: "pod-2", WaitMs: -1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the subtests share the held job.
			err := tt.call(t.Context())
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Empty(t, cmp.Diff(before, e.snapshot(id, store.DefaultPoolID)), "nothing changed")
		})
	}
}

// TestOutputsLifecycle: Complete before Claim is refused; Complete listing
// a file that was never uploaded is refused and the job keeps running; after
// a real PUT to the presigned URL Complete succeeds and records the key;
// a Heartbeat afterwards is refused.
func TestOutputsLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	in := e.start(Config{})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]

	t.Run("complete before claim", func(t *testing.T) {
		before := e.snapshot(id, store.DefaultPoolID)
		err := w.complete(t.Context(), &coordinatorv1.Job{Id: id.String(), ClaimToken: "guessed"})
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Empty(t, cmp.Diff(before, e.snapshot(id, store.DefaultPoolID)))
	})

	job := w.mustClaim(t, "pod-1")
	video := &coordinatorv1.Output{Name: "720p/video.mp4", Kind: "video", SizeBytes: 11, ContentType: "video/mp4",
		Attributes: map[string]string{"height": "720"}}

	t.Run("complete with an output never uploaded", func(t *testing.T) {
		err := w.complete(t.Context(), job, video)
		assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), "720p/video.mp4")
		j := e.job(id)
		assert.Equal(t, store.JobRunning, j.Status, "the job keeps running")
		assert.JSONEq(t, `[]`, string(j.Outputs), "no outputs recorded")
	})

	res, err := w.client.PresignOutputs(w.ctx(t.Context(), job.GetClaimToken()), &coordinatorv1.PresignOutputsRequest{JobId: job.GetId(),
		Files: []*coordinatorv1.OutputFile{{Name: video.GetName(), ContentType: video.GetContentType()}}})
	require.NoError(t, err)
	require.Len(t, res.GetUploads(), 1)
	up := res.GetUploads()[0]
	assert.Equal(t, video.GetName(), up.GetName())
	req, err := http.NewRequestWithContext(t.Context(), up.GetMethod(), up.GetUrl(), bytes.NewReader([]byte("fake video!")))
	require.NoError(t, err)
	for k, v := range up.GetHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "PUT to the presigned URL")

	require.NoError(t, w.complete(t.Context(), job, video))
	j := e.job(id)
	assert.Equal(t, store.JobCompleted, j.Status)
	var outs []outputRecord
	require.NoError(t, json.Unmarshal(j.Outputs, &outs))
	key := "orgs/" + e.org.ID.String() + "/jobs/" + id.String() + "/outputs/720p/video.mp4"
	assert.Equal(t, []outputRecord{{Name: "720p/video.mp4", Kind: "video", SizeBytes: 11, ContentType: "video/mp4", Key: key,
		Attributes: map[string]string{"height": "720"}}}, outs)
	ok, err := e.objects.Exists(ctx, key)
	require.NoError(t, err)
	assert.True(t, ok)

	_, err = w.heartbeat(t.Context(), job, 0.5)
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "heartbeat after complete: %v", err)
	err = w.complete(t.Context(), job, video)
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "complete twice: %v", err)
	assert.Equal(t, store.JobCompleted, e.job(id).Status)
}

// headProbe sits between the coordinator and S3. On every HEAD (Complete's
// output check) it tries to lock the job's row without waiting, and it holds
// the HEADs back until limit of them are in flight at once.
type headProbe struct {
	db    *pgxpool.Pool
	job   atomic.Pointer[uuid.UUID]
	limit int
	full  chan struct{} // closed once limit HEADs were in flight together

	// lockProbe serializes the probes' own lock attempts: two of them at
	// once on the same row would refuse each other, not the coordinator.
	lockProbe sync.Mutex

	mu                  sync.Mutex
	inFlight, maxFlight int
	filled              bool
	heads               int
	lockErrs            []error
}

func (p *headProbe) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := p.job.Load()
		if r.Method != http.MethodHead || id == nil {
			next.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.inFlight++
		p.maxFlight = max(p.maxFlight, p.inFlight)
		if p.inFlight == p.limit && !p.filled {
			p.filled = true
			close(p.full)
		}
		p.mu.Unlock()
		select {
		case <-p.full:
		case <-time.After(10 * time.Second): // HEADs one after another never fill it
		}
		p.lockProbe.Lock()
		_, err := p.db.Exec(r.Context(), `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE NOWAIT`, *id)
		p.lockProbe.Unlock()
		next.ServeHTTP(w, r)
		p.mu.Lock()
		p.inFlight--
		p.heads++
		p.lockErrs = append(p.lockErrs, err)
		p.mu.Unlock()
	})
}

// TestCompleteChecksOutputsOutsideTheTransaction: Complete sends its HEADs
// (OutputChecks at a time, in parallel) while nothing holds the job's row —
// another session can lock it without waiting during every HEAD — and only
// then completes the job.
func TestCompleteChecksOutputsOutsideTheTransaction(t *testing.T) {
	t.Parallel()
	const checks, files = 2, 5
	e := newEnv(t)
	s3 := testenv.S3(t)
	target, err := url.Parse(s3.Endpoint)
	require.NoError(t, err)
	probe := &headProbe{db: e.db, limit: checks, full: make(chan struct{})}
	// The proxy keeps the Host header, so signatures made for its address
	// still verify at the S3 server behind it.
	proxy := httptest.NewServer(probe.handler(httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)
	s3.Endpoint = proxy.URL
	e.objects, err = objstore.New(t.Context(), s3)
	require.NoError(t, err)
	in := e.start(Config{OutputChecks: checks})
	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]
	job := w.mustClaim(t, "pod-1")

	var outs []*coordinatorv1.Output
	req := &coordinatorv1.PresignOutputsRequest{JobId: job.GetId()}
	for i := range files {
		name := fmt.Sprintf("hls/seg_%05d.m4s", i)
		outs = append(outs, &coordinatorv1.Output{Name: name, Kind: "segment", SizeBytes: 4, ContentType: "video/iso.segment"})
		req.Files = append(req.Files, &coordinatorv1.OutputFile{Name: name, ContentType: "video/iso.segment"})
	}
	res, err := w.client.PresignOutputs(w.ctx(t.Context(), job.GetClaimToken()), req)
	require.NoError(t, err)
	for _, up := range res.GetUploads() {
		put, err := http.NewRequestWithContext(t.Context(), up.GetMethod(), up.GetUrl(), strings.NewReader("seg!"))
		require.NoError(t, err)
		for k, v := range up.GetHeaders() {
			put.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(put)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "PUT %s", up.GetName())
	}

	probe.job.Store(&id)
	require.NoError(t, w.complete(t.Context(), job, outs...))
	assert.Equal(t, store.JobCompleted, e.job(id).Status)
	probe.mu.Lock()
	defer probe.mu.Unlock()
	assert.Equal(t, files, probe.heads, "one HEAD per output")
	assert.Equal(t, checks, probe.maxFlight, "OutputChecks HEADs at a time, no more")
	for i, err := range probe.lockErrs {
		assert.NoError(t, err, "HEAD %d ran while the job's row was locked", i)
	}
}
