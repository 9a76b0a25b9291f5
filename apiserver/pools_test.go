package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestPauseAndResumeSetTheRedisKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{
		"name": "gpu", "accelerator": "nvidia", "min_replicas": 1, "max_replicas": 8, "polling_interval_seconds": 5,
		"target_queue_length": 2, "backfill_max_replicas": 3, "node_selector": map[string]string{"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
		"tolerations":  []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}},
		"cron_windows": []any{map[string]any{"timezone": "America/New_York", "start": "55 7 * * 1-5", "end": "0 18 * * 1-5", "desired_replicas": 4}},
		"resources":    map[string]any{"cpu_request": "2", "memory_request": "4Gi"},
	}, &pool)
	assert.Equal(t, "nvidia", pool.Accelerator)
	require.Len(t, pool.CronWindows, 1)

	key := f.queue.Keys().Paused(pool.ID)
	exists := func() bool {
		n, err := f.rdb.Exists(t.Context(), key).Result()
		require.NoError(t, err)
		return n == 1
	}
	require.False(t, exists())

	var paused apiv1.Pool
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+pool.ID+"/pause", admin, nil, &paused)
	assert.Equal(t, "paused", paused.Status)
	assert.True(t, exists(), "pause sets %s", key)
	row, err := f.store.GetPool(t.Context(), store.PoolScope{OrgID: f.orgA.ID}, pool.ID)
	require.NoError(t, err)
	assert.Equal(t, "paused", row.Status)

	// Jobs still queue while paused.
	f.submitJob(t, admin, map[string]any{"input": map[string]any{"url": "https://x.example/a.mp4"}, "workflow": "mp4-720p", "pool": pool.ID})
	var got apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, f.keys[auth.Viewer], nil, &got)
	assert.EqualValues(t, 1, got.QueueDepth["live"])

	var resumed apiv1.Pool
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+pool.ID+"/resume", admin, nil, &resumed)
	assert.Equal(t, "active", resumed.Status)
	assert.False(t, exists(), "resume clears %s", key)

	// Settings patch keeps what it does not name, and validates the result.
	var patched apiv1.Pool
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"max_replicas": 12}, &patched)
	assert.Equal(t, 12, patched.MaxReplicas)
	assert.Equal(t, "nvidia", patched.Accelerator)
	assert.Equal(t, apiv1.DefaultWarmIdleSeconds, patched.WarmIdleSeconds, "a pool not told otherwise keeps warm pods 300 s")
	r := f.do(t, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"min_replicas": 50})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Contains(t, r.fields(t), "min_replicas")
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"warm_idle_seconds": 600}, &patched)
	assert.Equal(t, 600, patched.WarmIdleSeconds)
	for _, bad := range []int{19, 3601} {
		r = f.do(t, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"warm_idle_seconds": bad})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "warm_idle_seconds %d", bad)
		assert.Contains(t, r.fields(t), "warm_idle_seconds")
	}

	// A pool with unfinished work cannot be deleted; an empty one can.
	r = f.do(t, "DELETE", "/v1/pools/"+pool.ID, admin, nil)
	assert.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	var empty apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "empty"}, &empty)
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+empty.ID+"/pause", admin, nil, nil)
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/pools/"+empty.ID, admin, nil, nil)
	n, err := f.rdb.Exists(t.Context(), f.queue.Keys().Paused(empty.ID)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "deleting a pool removes its pause key")
}

// TestJobsPerPod: an organization's own pool may run up to 100 jobs per
// pod; the shared pool, whose pods serve every organization, runs one, and
// not even the platform may change that.
func TestJobsPerPod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "chunks"}, &pool)
	assert.Equal(t, 1, pool.JobsPerPod, "a pool not told otherwise runs one job per pod")

	var patched apiv1.Pool
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"jobs_per_pod": 8}, &patched)
	assert.Equal(t, 8, patched.JobsPerPod)
	var got apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &got)
	assert.Equal(t, 8, got.JobsPerPod)
	for _, bad := range []any{0, 101, "x"} {
		r := f.do(t, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"jobs_per_pod": bad})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "jobs_per_pod %v: %s", bad, r.Body)
		assert.Equal(t, []string{"jobs_per_pod"}, r.fields(t), "jobs_per_pod %v", bad)
	}
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &got)
	assert.Equal(t, 8, got.JobsPerPod, "a refused patch changes nothing")

	super := f.keys[auth.SuperAdmin]
	var before, after apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+apiv1.DefaultPoolID, super, nil, &before)
	require.Equal(t, 1, before.JobsPerPod)
	for _, route := range []string{"PATCH /v1/pools/" + apiv1.DefaultPoolID, "POST /v1/pools/" + apiv1.DefaultPoolID + "/plan"} {
		method, path, _ := strings.Cut(route, " ")
		r := f.do(t, method, path, super, map[string]any{"jobs_per_pod": 2, "max_replicas": 60})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", route, r.Body)
		assert.Equal(t, []string{"jobs_per_pod"}, r.fields(t), route)
	}
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+apiv1.DefaultPoolID, super, nil, &after)
	assert.Equal(t, before, after, "the shared pool is unchanged")
}

// TestSharedPool: every tenant sees the shared pool; only the platform
// (SuperAdmin) pauses it, and nobody deletes it.
func TestSharedPool(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var pools apiv1.Page[apiv1.Pool]
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools", f.keyB, nil, &pools)
	require.NotEmpty(t, pools.Items)
	assert.Equal(t, "default", pools.Items[0].ID)

	r := f.do(t, "POST", "/v1/pools/default/pause", f.keyB, nil)
	assert.Equal(t, http.StatusNotFound, r.Status, "a tenant owner cannot pause the shared pool")
	r = f.do(t, "POST", "/v1/pools/default/pause", f.keys[auth.Owner], nil)
	assert.Equal(t, http.StatusNotFound, r.Status)

	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/default/pause", f.keys[auth.SuperAdmin], nil, nil)
	paused, err := f.queue.Paused(t.Context(), "default")
	require.NoError(t, err)
	assert.True(t, paused)
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/default/resume", f.keys[auth.SuperAdmin], nil, nil)
	r = f.do(t, "DELETE", "/v1/pools/default", f.keys[auth.SuperAdmin], nil)
	assert.Equal(t, http.StatusConflict, r.Status)
}

// TestPoolActivity: a pool's page counts the organization's jobs running
// on it and, for its own pools only, the pool's live workers.
func TestPoolActivity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "busy"}, &pool)
	get := func(id, key string) apiv1.Pool {
		var p apiv1.Pool
		f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+id, key, nil, &p)
		return p
	}
	idle := get(pool.ID, f.keys[auth.Viewer])
	require.NotNil(t, idle.InFlight)
	require.NotNil(t, idle.Workers)
	assert.EqualValues(t, 0, *idle.InFlight)
	assert.EqualValues(t, 0, *idle.Workers)

	run := func(key, poolID string) apiv1.Job {
		j := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "https://x.example/a.mp4"}, "workflow": "mp4-720p", "pool": poolID})
		_, err := f.db.Exec(t.Context(), `UPDATE jobs SET status = 'running', started_at = now() WHERE id = $1`, j.ID)
		require.NoError(t, err)
		return j
	}
	running := run(admin, pool.ID)
	f.submitJob(t, admin, map[string]any{"input": map[string]any{"url": "https://x.example/b.mp4"}, "workflow": "mp4-720p", "pool": pool.ID}) // queued: not in flight
	for _, w := range []store.Worker{{ID: "busy-1", PoolID: pool.ID, Lane: "live"}, {ID: "busy-2", PoolID: pool.ID, Lane: "live"}, {ID: "gone", PoolID: pool.ID, Lane: "live"}} {
		_, err := f.store.UpsertWorker(t.Context(), w)
		require.NoError(t, err)
	}
	_, err := f.store.LeaveWorker(t.Context(), "gone", pool.ID)
	require.NoError(t, err)
	busy := get(pool.ID, f.keys[auth.Viewer])
	assert.EqualValues(t, 1, *busy.InFlight, "job %s runs, the other waits", running.ID)
	assert.EqualValues(t, 2, *busy.Workers, "an offline worker is not counted")

	// On the shared pool each organization counts its own jobs, and nobody
	// the platform's workers.
	run(admin, store.DefaultPoolID)
	run(f.keyB, store.DefaultPoolID)
	run(f.keyB, store.DefaultPoolID)
	shared := get(store.DefaultPoolID, f.keys[auth.Viewer])
	assert.EqualValues(t, 1, *shared.InFlight)
	assert.Nil(t, shared.Workers)
	assert.EqualValues(t, 2, *get(store.DefaultPoolID, f.keyB).InFlight)
}
