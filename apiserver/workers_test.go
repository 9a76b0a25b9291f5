package apiserver

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestDrainAndEvict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", f.keys[auth.Admin], map[string]any{"name": "p"}, &pool)
	job := f.submitJob(t, f.keys[auth.Editor], map[string]any{"input": map[string]any{"url": "https://x.example/a.mp4"}, "workflow": "mp4-720p", "pool": pool.ID})
	// Play the coordinator's part: the worker popped the id and holds the job.
	require.NoError(t, f.rdb.Del(ctx, f.queue.Keys().Queue(pool.ID, "live")).Err())
	_, err := f.store.UpsertWorker(ctx, store.Worker{ID: "pod-1", PoolID: pool.ID, Lane: "live", Node: "node-a", CurrentJobID: new(uuid.MustParse(job.ID))})
	require.NoError(t, err)
	_, err = f.store.UpsertWorker(ctx, store.Worker{ID: "pod-2", PoolID: pool.ID, Lane: "live"})
	require.NoError(t, err)
	_, err = f.db.Exec(ctx, `UPDATE jobs SET status = 'running', worker_id = 'pod-1', lease_expires_at = now() + interval '1 minute', attempts = 1 WHERE id = $1`, job.ID)
	require.NoError(t, err)

	var ws apiv1.Page[apiv1.Worker]
	f.mustDo(t, http.StatusOK, "GET", "/v1/workers", f.keys[auth.Admin], nil, &ws)
	assert.Len(t, ws.Items, 2, "an admin sees the workers of the org's pools")
	f.mustDo(t, http.StatusOK, "GET", "/v1/workers", f.keyB, nil, &ws)
	assert.Empty(t, ws.Items, "another org sees none of them")

	var w apiv1.Worker
	f.mustDo(t, http.StatusOK, "POST", "/v1/workers/pod-2/drain", f.keys[auth.SuperAdmin], nil, &w)
	assert.Equal(t, store.WorkerDraining, w.Status)

	f.mustDo(t, http.StatusOK, "POST", "/v1/workers/pod-1/evict", f.keys[auth.SuperAdmin], nil, &w)
	assert.Equal(t, store.WorkerEvicted, w.Status)
	var got apiv1.Job
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+job.ID, f.keys[auth.Viewer], nil, &got)
	assert.Equal(t, store.JobQueued, got.Status, "evict requeues the job")
	assert.Nil(t, got.WorkerID)
	ids, err := f.rdb.LRange(ctx, f.queue.Keys().Queue(pool.ID, "live"), 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{job.ID}, ids, "and pushes it back on its list")

	assert.Equal(t, http.StatusConflict, f.do(t, "POST", "/v1/workers/pod-1/drain", f.keys[auth.SuperAdmin], nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "POST", "/v1/workers/nobody/evict", f.keys[auth.SuperAdmin], nil).Status)
}

func TestSuspendOrganization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sa := f.keys[auth.SuperAdmin]
	var orgs apiv1.Page[apiv1.Organization]
	f.mustDo(t, http.StatusOK, "GET", "/v1/admin/organizations", sa, nil, &orgs)
	assert.Len(t, orgs.Items, 2)

	f.mustDo(t, http.StatusOK, "POST", "/v1/admin/organizations/"+f.orgB.ID.String()+"/suspend", sa, nil, nil)
	r := f.do(t, "GET", "/v1/jobs", f.keyB, nil)
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Equal(t, problemPrefix+"organization-suspended", r.problem(t).Type)
	assert.Equal(t, http.StatusConflict, f.do(t, "POST", "/v1/admin/organizations/"+f.orgA.ID.String()+"/suspend", sa, nil).Status, "no self-suspension")

	f.mustDo(t, http.StatusOK, "POST", "/v1/admin/organizations/"+f.orgB.ID.String()+"/reinstate", sa, nil, nil)
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", f.keyB, nil, nil)
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, http.StatusOK, "GET", "/health", "", nil, nil)
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	f.mustDo(t, http.StatusOK, "GET", "/ready", "", nil, &ready)
	assert.Equal(t, map[string]string{"postgres": "ok", "redis": "ok"}, ready.Checks)
	require.NoError(t, f.rdb.Close())
	r := f.do(t, "GET", "/ready", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status, "ready fails when redis is gone")
	f.mustDo(t, http.StatusOK, "GET", "/health", "", nil, nil)
}
