package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestSubmittedJobIsOnItsLaneList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	key := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", key, map[string]any{"name": "dedicated", "max_replicas": 4, "backfill_max_replicas": 2}, &pool)

	cases := []struct {
		name, pool, lane, wantKey string
	}{
		{"default pool live lane", "", "", f.queue.Keys().Queue("default", "live")},
		{"default pool backfill lane", "default", "backfill", f.queue.Keys().Queue("default", "backfill")},
		{"dedicated pool live lane", pool.ID, "live", f.queue.Keys().Queue(pool.ID, "live")},
	}
	for _, tc := range cases {
		body := urlJob()
		if tc.pool != "" {
			body["pool"] = tc.pool
		}
		if tc.lane != "" {
			body["lane"] = tc.lane
		}
		job := f.submitJob(t, key, body)
		assert.Equal(t, store.JobQueued, job.Status, tc.name)
		ids, err := f.rdb.LRange(ctx, tc.wantKey, 0, -1).Result()
		require.NoError(t, err)
		assert.Equal(t, []string{job.ID}, ids, "%s: list %s", tc.name, tc.wantKey)
	}
	assert.Equal(t, "mpegflow:queue:default", "mpegflow"+f.queue.Keys().Queue("default", "live")[len(f.queue.Keys().Prefix):],
		"the live list of the shared pool follows design.md's key")

	var events apiv1.Page[apiv1.JobEvent]
	job := f.submitJob(t, key, urlJob())
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+job.ID+"/events", f.keys[auth.Viewer], nil, &events)
	require.Len(t, events.Items, 1)
	assert.Equal(t, "job.queued", events.Items[0].Type)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	body := []byte(`{"input":{"url":"https://media.example.com/a.mp4"},"workflow":"hls-ladder"}`)
	hdr := map[string]string{"Idempotency-Key": "order-42"}

	first := f.raw(t, "POST", "/v1/jobs", key, body, hdr)
	require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
	var j1, j2 apiv1.Job
	first.json(t, &j1)

	again := f.raw(t, "POST", "/v1/jobs", key, body, hdr)
	require.Equal(t, http.StatusOK, again.Status, "%s", again.Body)
	again.json(t, &j2)
	assert.Equal(t, j1.ID, j2.ID)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	other := f.raw(t, "POST", "/v1/jobs", key, []byte(`{"input":{"url":"https://media.example.com/b.mp4"},"workflow":"hls-ladder"}`), hdr)
	assert.Equal(t, http.StatusConflict, other.Status, "same key, different request: %s", other.Body)

	// Another organization may use the same key independently.
	inB := f.raw(t, "POST", "/v1/jobs", f.keyB, body, hdr)
	require.Equal(t, http.StatusCreated, inB.Status)

	// Concurrent retries create one job.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = f.raw(t, "POST", "/v1/jobs", key, body, map[string]string{"Idempotency-Key": "burst"}).Status
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, s)
		if s == http.StatusCreated {
			created++
		}
	}
	assert.Equal(t, 1, created)

	jobs, err := f.store.ListJobs(context.Background(), f.orgA.ID, store.JobFilter{}, store.Page{Limit: 200})
	require.NoError(t, err)
	assert.Len(t, jobs, 2, "one job per idempotency key in org A")
	n, err := f.queue.Len(context.Background(), "default", "live")
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "replays push nothing (2 jobs in A, 1 in B)")
}

func TestJobLifecycleThroughAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	var wf apiv1.Workflow
	f.mustDo(t, http.StatusCreated, "POST", "/v1/workflows", key, map[string]any{
		"name": "web", "spec": map[string]any{"packaging": "mp4", "renditions": []any{map[string]any{"codec": "h264", "height": 480, "bitrate_kbps": 1200}}},
	}, &wf)
	job := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/key.mov"}, "workflow_id": wf.ID, "priority": 5, "metadata": map[string]string{"title": "x"}})
	assert.JSONEq(t, string(wf.Spec), string(job.Spec), "the workflow's spec is copied into the job")

	var got apiv1.Job
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+job.ID, f.keys[auth.Viewer], nil, &got)
	assert.Equal(t, job.ID, got.ID)

	var page apiv1.Page[apiv1.Job]
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs?status=queued&limit=10", f.keys[auth.Viewer], nil, &page)
	require.Len(t, page.Items, 1)

	var cancelled apiv1.Job
	f.mustDo(t, http.StatusOK, "POST", "/v1/jobs/"+job.ID+"/cancel", key, nil, &cancelled)
	assert.Equal(t, store.JobCancelled, cancelled.Status)
	r := f.do(t, "POST", "/v1/jobs/"+job.ID+"/cancel", key, nil)
	assert.Equal(t, http.StatusConflict, r.Status)

	// Keyset pagination walks every job once.
	for range 4 {
		f.submitJob(t, key, urlJob())
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		var p apiv1.Page[apiv1.Job]
		f.mustDo(t, http.StatusOK, "GET", "/v1/jobs?limit=2&cursor="+cursor, f.keys[auth.Viewer], nil, &p)
		for _, j := range p.Items {
			assert.False(t, seen[j.ID], "job listed twice")
			seen[j.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	assert.Len(t, seen, 5)
}

// A spec packaged for HLS and DASH at once is written as a list in either
// order and answered, stored and copied into jobs as ["hls", "dash"].
func TestCMAFPackagingThroughAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	var wf apiv1.Workflow
	f.mustDo(t, http.StatusCreated, "POST", "/v1/workflows", key, map[string]any{
		"name": "both", "spec": map[string]any{"packaging": []string{"dash", "hls"},
			"renditions": []any{map[string]any{"codec": "h264", "height": 480, "bitrate_kbps": 1200}}},
	}, &wf)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(wf.Spec, &spec))
	assert.Equal(t, []any{"hls", "dash"}, spec["packaging"])
	assert.InDelta(t, 4, spec["segment_seconds"], 0, "segmented: the default segment duration is filled in")

	job := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/key.mov"}, "workflow_id": wf.ID})
	assert.JSONEq(t, string(wf.Spec), string(job.Spec))
	builtin := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "s3://" + f.objects.Bucket() + "/orgs/" + f.orgA.ID.String() + "/key.mov"}, "workflow": "cmaf-ladder"})
	require.NoError(t, json.Unmarshal(builtin.Spec, &spec))
	assert.Equal(t, []any{"hls", "dash"}, spec["packaging"])
}
