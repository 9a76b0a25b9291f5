package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// library puts objects under org A's root and returns the s3:// prefix.
func (f *fixture) library(t *testing.T, dir string, names ...string) string {
	t.Helper()
	root := "orgs/" + f.orgA.ID.String() + "/" + dir + "/"
	for _, n := range names {
		require.NoError(t, f.objects.Put(t.Context(), root+n, strings.NewReader("x")))
	}
	return "s3://" + f.objects.Bucket() + "/" + root
}

// manifest uploads body as an asset of org A and returns its id.
func (f *fixture) manifest(t *testing.T, body string) string {
	t.Helper()
	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", f.keys[auth.Editor], map[string]any{"filename": "m.jsonl", "size_bytes": len(body)}, &a)
	stored, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	require.NoError(t, f.objects.Put(t.Context(), stored.ObjectKey, bytes.NewReader([]byte(body))))
	return a.ID
}

func (f *fixture) expander(t *testing.T, cfg backfill.Config) *backfill.Expander {
	t.Helper()
	cfg.Storage = f.objects.Storage()
	e, err := backfill.NewExpander(cfg, f.store, f.queue, f.objects, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return e
}

func (f *fixture) batch(t *testing.T, id uuid.UUID) apiv1.Batch {
	t.Helper()
	var b apiv1.Batch
	f.mustDo(t, http.StatusOK, "GET", "/v1/batches/"+id.String(), f.keys[auth.Viewer], nil, &b)
	return b
}

func (f *fixture) laneLen(t *testing.T, lane string) int64 {
	t.Helper()
	n, err := f.queue.Len(t.Context(), store.DefaultPoolID, lane)
	require.NoError(t, err)
	return n
}

// TestBatchFromPrefix: a prefix batch lists only matching objects of the
// org, becomes one backfill job per object (none on the live lane), and a
// resubmission returns the same batch and creates nothing more.
func TestBatchFromPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := f.library(t, "library", "a.mp4", "b.mp4", "sub/c.mp4", "d.txt", "skip/e.mp4", "f .mp4")
	body := map[string]any{"workflow": "mp4-720p", "source": map[string]any{
		"prefix": prefix, "include": []string{"*.mp4"}, "exclude": []string{"skip/*"}}}
	var b apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], body, &b)
	assert.Equal(t, int64(4), b.Expected)
	assert.Equal(t, store.PhaseExpanding, b.Status)

	e := f.expander(t, backfill.Config{ChunkSize: 3})
	n, err := e.ExpandOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 4, n)

	got := f.batch(t, uuid.MustParse(b.ID))
	assert.Equal(t, apiv1.BatchCounts{Total: 4, Queued: 4}, got.Counts)
	assert.Equal(t, store.PhaseRunning, got.Status)
	assert.Equal(t, int64(4), f.laneLen(t, apiv1.LaneBackfill))
	assert.Zero(t, f.laneLen(t, apiv1.LaneLive), "a batch never touches the live lane")

	// The job list narrows to the batch and to a lane; a live job of the
	// organization is in neither.
	live := f.submitJob(t, f.keys[auth.Editor], urlJob())
	for query, want := range map[string]int{
		"batch=" + b.ID: 4, "lane=backfill": 4, "lane=live": 1, "batch=" + b.ID + "&lane=live": 0, "batch=" + uuid.NewString(): 0,
	} {
		var page apiv1.Page[apiv1.Job]
		f.mustDo(t, http.StatusOK, "GET", "/v1/jobs?limit=10&"+query, f.keys[auth.Viewer], nil, &page)
		assert.Len(t, page.Items, want, query)
		for _, j := range page.Items {
			assert.Equal(t, query == "lane=live", j.ID == live.ID, query)
		}
	}
	for query, field := range map[string]string{"lane=fast": "lane", "batch=nope": "batch"} {
		r := f.do(t, "GET", "/v1/jobs?"+query, f.keys[auth.Viewer], nil)
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, query)
		assert.Contains(t, r.fields(t), field, query)
	}
	_, err = f.db.Exec(t.Context(), `UPDATE jobs SET status = 'cancelled' WHERE id = $1`, live.ID)
	require.NoError(t, err)

	var jobs apiv1.Page[apiv1.Job]
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs?limit=10&lane=backfill", f.keys[auth.Viewer], nil, &jobs)
	var inputs []string
	for _, j := range jobs.Items {
		assert.Equal(t, apiv1.LaneBackfill, j.Lane)
		inputs = append(inputs, *j.InputURL)
	}
	root := strings.TrimSuffix(prefix, "/")
	assert.ElementsMatch(t, []string{root + "/a.mp4", root + "/b.mp4", root + "/sub/c.mp4", root + "/f%20.mp4"}, inputs)

	// The same command again: the same batch, replayed, and no new jobs.
	r := f.do(t, "POST", "/v1/batches", f.keys[auth.Editor], body)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
	var again apiv1.Batch
	r.json(t, &again)
	assert.Equal(t, b.ID, again.ID)
	assert.Equal(t, int64(4), again.Counts.Total)
	n, err = e.ExpandOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)

	// Another organization cannot see it.
	r = f.do(t, "GET", "/v1/batches/"+b.ID, f.keyB, nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
	r = f.do(t, "POST", "/v1/batches/"+b.ID+"/cancel", f.keyB, nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
}

// TestBatchBadInput: every bad batch answers 4xx naming the field (or the
// manifest lines) and leaves no batch and no job behind.
func TestBatchBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := f.library(t, "bad", "a.mp4", "b.mp4", "c.mp4")
	bucket := f.objects.Bucket()
	goodLine := `{"input":"s3://` + bucket + `/orgs/` + f.orgA.ID.String() + `/bad/a.mp4"}`
	malformed := f.manifest(t, goodLine+"\nnot json\n"+`{"input":"ftp://x.example/a"}`+"\n"+`{"input":"s3://`+bucket+`/orgs/`+f.orgB.ID.String()+`/x.mp4"}`+"\n")
	empty := f.manifest(t, "\n\n")
	big := f.manifest(t, strings.Repeat(goodLine+"\n", 1)+`"https://media.example.com/b.mp4"`+"\n"+`{"input":"https://media.example.com/c.mp4"}`+"\n")
	blanks := f.manifest(t, goodLine+strings.Repeat("\n", backfill.MaxEntries+1)) // one input, then blank lines past the read limit
	cases := []struct {
		name   string
		body   string
		status int
		fields []string
	}{
		{"no source", `{"workflow":"mp4-720p"}`, 422, []string{"source"}},
		{"empty prefix", `{"workflow":"mp4-720p","source":{"prefix":"` + prefix + `nothing/"}}`, 422, []string{"source.prefix"}},
		{"include matches nothing", `{"workflow":"mp4-720p","source":{"prefix":"` + prefix + `","include":["*.mov"]}}`, 422, []string{"source.prefix"}},
		{"another org's prefix", `{"workflow":"mp4-720p","source":{"prefix":"s3://` + bucket + `/orgs/` + f.orgB.ID.String() + `/"}}`, 422, []string{"source.prefix"}},
		{"another bucket", `{"workflow":"mp4-720p","source":{"prefix":"s3://elsewhere/orgs/` + f.orgA.ID.String() + `/"}}`, 422, []string{"source.prefix"}},
		{"not s3", `{"workflow":"mp4-720p","source":{"prefix":"https://x.example/a/"}}`, 422, []string{"source.prefix"}},
		{"bad glob", `{"workflow":"mp4-720p","source":{"prefix":"` + prefix + `","include":["[a-"]}}`, 422, []string{"source.include[0]"}},
		{"unknown builtin", `{"workflow":"nope","source":{"prefix":"` + prefix + `"}}`, 422, []string{"workflow"}},
		{"unknown workflow id", `{"workflow_id":"` + uuid.NewString() + `","source":{"prefix":"` + prefix + `"}}`, 422, []string{"workflow_id"}},
		{"live lane", `{"workflow":"mp4-720p","lane":"live","source":{"prefix":"` + prefix + `"}}`, 422, []string{"lane"}},
		{"bad caps", `{"workflow":"mp4-720p","max_concurrency":0,"submit_rate":-1,"source":{"prefix":"` + prefix + `"}}`, 422, []string{"max_concurrency", "submit_rate"}},
		{"unknown pool", `{"workflow":"mp4-720p","pool":"nope","source":{"prefix":"` + prefix + `"}}`, 422, []string{"pool"}},
		{"another org's manifest", `{"workflow":"mp4-720p","source":{"manifest_asset_id":"` + uuid.NewString() + `"}}`, 422, []string{"source.manifest_asset_id"}},
		{"malformed lines rejected", `{"workflow":"mp4-720p","source":{"manifest_asset_id":"` + malformed + `"}}`, 422, []string{"source.lines[2]", "source.lines[3]", "source.lines[4]"}},
		{"empty manifest", `{"workflow":"mp4-720p","source":{"manifest_asset_id":"` + empty + `"}}`, 422, []string{"source.manifest_asset_id"}},
		{"bad format", `{"workflow":"mp4-720p","source":{"manifest_asset_id":"` + big + `","format":"xml","on_error":"ignore"}}`, 422, []string{"source.format", "source.on_error"}},
		{"blank lines past the read limit", `{"workflow":"mp4-720p","source":{"manifest_asset_id":"` + blanks + `"}}`, 422, []string{"source"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.raw(t, "POST", "/v1/batches", f.keys[auth.Editor], []byte(tc.body), nil)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			got := r.fields(t)
			for _, want := range tc.fields {
				assert.Contains(t, got, want, "%s", r.Body)
			}
		})
	}

	// Over quota: 3 inputs, room for 2.
	_, err := f.store.SetJobQuota(t.Context(), f.orgA.ID, 2)
	require.NoError(t, err)
	r := f.raw(t, "POST", "/v1/batches", f.keys[auth.Editor], []byte(`{"workflow":"mp4-720p","source":{"manifest_asset_id":"`+big+`"}}`), nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Contains(t, r.fields(t), "source")

	// Nothing was half-created.
	var bs apiv1.Page[apiv1.BatchSummary]
	f.mustDo(t, http.StatusOK, "GET", "/v1/batches", f.keys[auth.Viewer], nil, &bs)
	assert.Empty(t, bs.Items)
	var js apiv1.Page[apiv1.Job]
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", f.keys[auth.Viewer], nil, &js)
	assert.Empty(t, js.Items)
	assert.Zero(t, f.laneLen(t, apiv1.LaneBackfill))
}

// TestBatchManifestSkip: on_error=skip expands the good lines and reports
// the bad ones by line number; CSV headers are skipped.
func TestBatchManifestSkip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	root := "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/m/"
	cases := []struct {
		name, format, body string
		expected, skipped  int64
		badLines           []int64
	}{
		{"jsonl", "jsonl", `{"input":"` + root + `a.mp4"}` + "\n" + `{"nope":1}` + "\n\n" + `"` + root + `b.mp4"` + "\r\n" + `{"input":"` + root + `a.mp4"}` + "\n", 3, 1, []int64{2}},
		{"csv", "csv", "input,title\n" + root + "a.mp4,A\n\"" + root + "b.mp4\",B\nftp://x/y,C\n", 2, 1, []int64{4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := f.manifest(t, tc.body)
			var b apiv1.Batch
			f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
				"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": id, "format": tc.format, "on_error": "skip"}}, &b)
			assert.Equal(t, tc.expected, b.Expected)
			assert.Equal(t, tc.skipped, b.SkippedLines)
			var lines []backfill.LineError
			require.NoError(t, json.Unmarshal(b.LineErrors, &lines))
			var got []int64
			for _, l := range lines {
				got = append(got, l.Line)
			}
			assert.Equal(t, tc.badLines, got)

			_, err := f.expander(t, backfill.Config{ChunkSize: 1}).ExpandOnce(t.Context())
			require.NoError(t, err)
			after := f.batch(t, uuid.MustParse(b.ID))
			assert.Equal(t, store.BatchExpanded, after.Expansion)
			assert.Equal(t, int64(2), after.Counts.Total, "a.mp4 twice is one job")
			assert.Equal(t, tc.expected-2, after.Duplicates)
		})
	}
}

// flakyObjects fails a manifest read after failAfter bytes, like a replica
// dying mid-expansion.
type flakyObjects struct {
	backfill.Objects
	failAfter int
}

type failingReader struct {
	r    io.Reader
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, fmt.Errorf("connection reset")
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

func (f *failingReader) Close() error { return nil }

func (o flakyObjects) OpenFrom(ctx context.Context, key string, offset int64, etag string) (io.ReadCloser, string, error) {
	body, got, err := o.Objects.OpenFrom(ctx, key, offset, etag)
	if err != nil {
		return nil, "", err
	}
	return &failingReader{r: body, left: o.failAfter}, got, nil
}

// TestBatchExpansionResumes: an expansion that dies half-way resumes from
// its persisted cursor on another replica once the lease lapses, and the
// batch ends with every input exactly once; two replicas expanding at once
// never duplicate a job either.
func TestBatchExpansionResumes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	root := "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/r/"
	var sb strings.Builder
	const inputs = 50
	for i := range inputs {
		fmt.Fprintf(&sb, "{\"input\":\"%sclip-%03d.mp4\"}\n", root, i)
	}
	id := f.manifest(t, sb.String())
	var b apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
		"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": id}}, &b)

	clk := testingclock.NewFakeClock(time.Now())
	line := len(fmt.Sprintf("{\"input\":\"%sclip-000.mp4\"}\n", root))
	crashing, err := backfill.NewExpander(backfill.Config{Storage: f.objects.Storage(), ChunkSize: 10, Clock: clk, Owner: "a"},
		f.store, f.queue, flakyObjects{Objects: f.objects, failAfter: 25 * line}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	n, err := crashing.ExpandOnce(t.Context())
	require.Error(t, err, "the read fails after 25 lines")
	assert.Equal(t, 20, n, "two chunks of 10 committed before the failure")
	mid := f.batch(t, uuid.MustParse(b.ID))
	assert.Equal(t, int64(20), mid.Counts.Total)
	assert.Equal(t, store.PhaseExpanding, mid.Status)

	// Two healthy replicas race for the rest.
	e1 := f.expander(t, backfill.Config{ChunkSize: 7, Clock: clk, Owner: "b"})
	e2 := f.expander(t, backfill.Config{ChunkSize: 7, Clock: clk, Owner: "c"})
	done := make(chan int, 2)
	for _, e := range []*backfill.Expander{e1, e2} {
		go func() {
			n, err := e.ExpandOnce(context.Background())
			assert.NoError(t, err)
			done <- n
		}()
	}
	created := <-done + <-done
	assert.Equal(t, inputs-20, created)
	end := f.batch(t, uuid.MustParse(b.ID))
	assert.Equal(t, store.BatchExpanded, end.Expansion)
	assert.Equal(t, int64(inputs), end.Counts.Total)
	assert.Equal(t, int64(inputs), end.Expanded)
	assert.Zero(t, end.Duplicates, "the resumed walk starts at the cursor, not at line 1")
	assert.Equal(t, int64(inputs), f.laneLen(t, apiv1.LaneBackfill))
}

// TestBatchManifestChangedAfterAcceptance: a manifest overwritten after its
// batch was accepted (the asset's presigned PUT stays valid for a while) is
// not expanded: the lines the input limit, the job quota and on_error
// were checked against are gone. The batch fails saying so, with no job.
func TestBatchManifestChangedAfterAcceptance(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	root := "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/swap/"
	id := f.manifest(t, `{"input":"`+root+`a.mp4"}`+"\n")
	var b apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
		"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": id}}, &b)
	assert.Equal(t, int64(1), b.Expected)

	asset, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(id))
	require.NoError(t, err)
	var sb strings.Builder
	for i := range 30 {
		fmt.Fprintf(&sb, "{\"input\":\"%sclip-%02d.mp4\"}\n", root, i)
	}
	require.NoError(t, f.objects.Put(t.Context(), asset.ObjectKey, strings.NewReader(sb.String())))

	n, err := f.expander(t, backfill.Config{ChunkSize: 10, Owner: "a"}).ExpandOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
	end := f.batch(t, uuid.MustParse(b.ID))
	assert.Equal(t, store.BatchFailed, end.Expansion)
	require.NotNil(t, end.Error)
	assert.Contains(t, *end.Error, "the manifest changed after the batch was accepted")
	assert.Zero(t, end.Counts.Total)
	assert.Zero(t, f.laneLen(t, apiv1.LaneBackfill))
}

// claimNext pops the next backfill id and claims it as worker pod.
func (f *fixture) claimNext(t *testing.T, pod string) (uuid.UUID, bool) {
	t.Helper()
	res, raw, _, err := f.queue.Pop(t.Context(), store.DefaultPoolID, apiv1.LaneBackfill)
	require.NoError(t, err)
	if res != queue.PopJob {
		return uuid.Nil, false
	}
	id := uuid.MustParse(raw)
	_, err = f.store.RegisterWorker(t.Context(), store.Worker{ID: pod, PoolID: store.DefaultPoolID, Lane: apiv1.LaneBackfill}, time.Now())
	require.NoError(t, err)
	_, err = f.store.ClaimJob(t.Context(), id, store.DefaultPoolID, apiv1.LaneBackfill, pod, []byte(pod), time.Now(), time.Now().Add(time.Minute))
	require.NoError(t, err)
	return id, true
}

// TestBatchCaps: max_concurrency bounds the batch's released and running
// jobs, refilled as jobs finish; submit_rate bounds releases per second.
func TestBatchCaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := f.library(t, "caps", "1.mp4", "2.mp4", "3.mp4", "4.mp4", "5.mp4")
	clk := testingclock.NewFakeClock(time.Now())
	e := f.expander(t, backfill.Config{Clock: clk})

	var b apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
		"workflow": "mp4-720p", "max_concurrency": 2, "source": map[string]any{"prefix": prefix}}, &b)
	_, err := e.ExpandOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, f.laneLen(t, apiv1.LaneBackfill), "a limited batch's jobs are held until released")
	assert.Equal(t, int64(5), f.batch(t, uuid.MustParse(b.ID)).Counts.Held)

	steps := []struct {
		name        string
		act         func(t *testing.T)
		wantRelease int
		wantRunning int64
	}{
		{"first release fills the window", func(*testing.T) {}, 2, 0},
		{"nothing while two are queued", func(*testing.T) {}, 0, 0},
		{"nothing while two run", func(t *testing.T) {
			f.claimNext(t, "pod-1")
			f.claimNext(t, "pod-2")
		}, 0, 2},
		{"one finished, one released", func(t *testing.T) {
			var jobs apiv1.Page[apiv1.Job]
			f.mustDo(t, http.StatusOK, "GET", "/v1/jobs?status=running", f.keys[auth.Viewer], nil, &jobs)
			require.NotEmpty(t, jobs.Items)
			f.mustDo(t, http.StatusOK, "POST", "/v1/jobs/"+jobs.Items[0].ID+"/cancel", f.keys[auth.Editor], nil, nil)
		}, 1, 1},
	}
	for _, s := range steps {
		s.act(t)
		n, err := e.ReleaseOnce(t.Context())
		require.NoError(t, err, s.name)
		assert.Equal(t, s.wantRelease, n, s.name)
		c := f.batch(t, uuid.MustParse(b.ID)).Counts
		assert.Equal(t, s.wantRunning, c.Running, s.name)
		assert.LessOrEqual(t, c.Running+(c.Queued-c.Held), int64(2), "%s: never more than max_concurrency in flight", s.name)
	}

	// submit_rate: one job per second.
	prefix2 := f.library(t, "rate", "1.mp4", "2.mp4", "3.mp4")
	var r apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
		"workflow": "mp4-720p", "submit_rate": 1, "source": map[string]any{"prefix": prefix2}}, &r)
	_, err = e.ExpandOnce(t.Context())
	require.NoError(t, err)
	before := f.batch(t, uuid.MustParse(r.ID)).Counts.Held
	release := func() int64 {
		_, err := e.ReleaseOnce(t.Context())
		require.NoError(t, err)
		return before - f.batch(t, uuid.MustParse(r.ID)).Counts.Held
	}
	assert.Equal(t, int64(1), release(), "the first second's token")
	clk.Step(500 * time.Millisecond)
	assert.Equal(t, int64(1), release(), "half a second later: no more")
	clk.Step(600 * time.Millisecond)
	assert.Equal(t, int64(2), release(), "a second after the last release: one more")
}

// TestBatchCancelAndRetry: cancel stops every job that has not started and
// leaves running ones; retry-failed queues failed jobs again.
func TestBatchCancelAndRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := f.library(t, "cr", "1.mp4", "2.mp4", "3.mp4", "4.mp4")
	e := f.expander(t, backfill.Config{})
	var b apiv1.Batch
	f.mustDo(t, http.StatusCreated, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{
		"workflow": "mp4-720p", "max_attempts": 1, "source": map[string]any{"prefix": prefix}}, &b)
	_, err := e.ExpandOnce(t.Context())
	require.NoError(t, err)

	// One job fails for good, one runs.
	failed, _ := f.claimNext(t, "pod-f")
	_, _, err = f.store.FailJob(t.Context(), failed, store.DefaultPoolID, []byte("pod-f"), "bad input", false, false, store.FailPolicy{Now: time.Now()})
	require.NoError(t, err)
	running, _ := f.claimNext(t, "pod-r")

	var retried apiv1.Batch
	f.mustDo(t, http.StatusOK, "POST", "/v1/batches/"+b.ID+"/retry-failed", f.keys[auth.Editor], nil, &retried)
	require.NotNil(t, retried.Affected)
	assert.Equal(t, int64(1), *retried.Affected)
	assert.Equal(t, apiv1.BatchCounts{Total: 4, Queued: 3, Running: 1}, retried.Counts)
	assert.Equal(t, int64(3), f.laneLen(t, apiv1.LaneBackfill), "two never claimed plus the retried one")

	var cancelled apiv1.Batch
	f.mustDo(t, http.StatusOK, "POST", "/v1/batches/"+b.ID+"/cancel", f.keys[auth.Editor], nil, &cancelled)
	assert.Equal(t, store.PhaseCancelled, cancelled.Status)
	assert.Equal(t, int64(3), *cancelled.Affected)
	assert.Equal(t, apiv1.BatchCounts{Total: 4, Running: 1, Cancelled: 3}, cancelled.Counts)
	j, err := f.store.GetJob(t.Context(), f.orgA.ID, running)
	require.NoError(t, err)
	assert.Equal(t, store.JobRunning, j.Status, "a started job is not cancelled by its batch")

	// Claims skip the cancelled ids left in Redis.
	_, ok := func() (uuid.UUID, bool) {
		for {
			res, raw, _, err := f.queue.Pop(t.Context(), store.DefaultPoolID, apiv1.LaneBackfill)
			require.NoError(t, err)
			if res != queue.PopJob {
				return uuid.Nil, false
			}
			_, err = f.store.ClaimJob(t.Context(), uuid.MustParse(raw), store.DefaultPoolID, apiv1.LaneBackfill, "pod-x", nil, time.Now(), time.Now())
			if err == nil {
				return uuid.MustParse(raw), true
			}
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	}()
	assert.False(t, ok, "no cancelled job can be claimed")

	r := f.do(t, "POST", "/v1/batches/"+b.ID+"/retry-failed", f.keys[auth.Editor], nil)
	assert.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	r = f.do(t, "POST", "/v1/batches/"+b.ID+"/cancel", f.keys[auth.Viewer], nil)
	assert.Equal(t, http.StatusForbidden, r.Status)
}
