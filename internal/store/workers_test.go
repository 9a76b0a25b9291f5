package store_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestUpsertWorker(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()

	w, err := s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive, Node: "n1"})
	require.NoError(t, err)
	assert.Equal(t, store.WorkerOnline, w.Status)
	assert.JSONEq(t, `{}`, string(w.Capabilities))

	// A heartbeat refreshes node and capabilities but keeps pool and lane.
	w, err = s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: "ignored", Lane: apiv1.LaneBackfill, Node: "n2",
		Capabilities: json.RawMessage(`{"nvenc": true}`)})
	require.NoError(t, err)
	assert.Equal(t, "n2", w.Node)
	assert.JSONEq(t, `{"nvenc": true}`, string(w.Capabilities))
	assert.Equal(t, store.DefaultPoolID, w.PoolID)
	assert.Equal(t, apiv1.LaneLive, w.Lane)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM workers`))

	// An offline worker that heartbeats is online again.
	_, err = db.Exec(ctx, `UPDATE workers SET status = 'offline' WHERE id = 'w1'`)
	require.NoError(t, err)
	w, err = s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive})
	require.NoError(t, err)
	assert.Equal(t, store.WorkerOnline, w.Status)

	// A worker of a pool that does not exist is refused.
	_, err = s.UpsertWorker(ctx, store.Worker{ID: "w2", PoolID: "nope", Lane: apiv1.LaneLive})
	require.Error(t, err)
}

func TestDrainWorker(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()

	_, err := s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive})
	require.NoError(t, err)
	w, err := s.DrainWorker(ctx, "w1")
	require.NoError(t, err)
	assert.Equal(t, store.WorkerDraining, w.Status)
	w, err = s.DrainWorker(ctx, "w1")
	require.NoError(t, err, "draining twice is fine")
	assert.Equal(t, store.WorkerDraining, w.Status)
	w, err = s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive})
	require.NoError(t, err)
	assert.Equal(t, store.WorkerDraining, w.Status, "a heartbeat does not undo a drain")

	_, err = s.DrainWorker(ctx, "ghost")
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = db.Exec(ctx, `UPDATE workers SET status = 'offline' WHERE id = 'w1'`)
	require.NoError(t, err)
	_, err = s.DrainWorker(ctx, "w1")
	require.ErrorIs(t, err, store.ErrConflict, "an offline worker cannot be drained")
}

func TestEvictWorker(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "p")

	nj := urlJob(b.Org.ID)
	nj.PoolID = pool.ID
	running := createJob(t, s, nj)
	bystander := createJob(t, s, nj)
	for id, worker := range map[any]string{running.ID: "w1", bystander.ID: "w2"} {
		_, err := db.Exec(ctx, `UPDATE jobs SET status = 'running', worker_id = $2, attempts = 1, progress = 0.5,
			started_at = now(), lease_expires_at = now() + interval '1 minute', claim_token_hash = '\x01'
			WHERE id = $1`, id, worker)
		require.NoError(t, err)
	}
	for _, id := range []string{"w1", "w2"} {
		_, err := s.UpsertWorker(ctx, store.Worker{ID: id, PoolID: pool.ID, Lane: apiv1.LaneLive})
		require.NoError(t, err)
	}
	_, err := s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: pool.ID, Lane: apiv1.LaneLive, CurrentJobID: &running.ID})
	require.NoError(t, err)

	w, requeuedJobs, err := s.EvictWorker(ctx, "w1")
	require.NoError(t, err)
	assert.Equal(t, store.WorkerEvicted, w.Status)
	assert.Nil(t, w.CurrentJobID)
	require.Len(t, requeuedJobs, 1, "the running job is returned for the caller to push")
	requeued := requeuedJobs[0]
	assert.Equal(t, running.ID, requeued.ID)
	assert.Equal(t, store.JobQueued, requeued.Status)
	assert.Nil(t, requeued.WorkerID)
	assert.Nil(t, requeued.LeaseExpiresAt)
	assert.Zero(t, requeued.Progress)

	got, err := s.GetJob(ctx, b.Org.ID, running.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobQueued, got.Status, "the requeue is committed")
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM jobs WHERE id = $1 AND claim_token_hash IS NOT NULL`, running.ID),
		"the old claim token no longer works")
	events, err := s.ListJobEvents(ctx, b.Org.ID, running.ID, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"job.queued", "job.requeued"}, eventTypes(events))
	assert.JSONEq(t, `{"reason": "worker evicted", "worker_id": "w1"}`, string(events[1].Data))

	other, err := s.GetJob(ctx, b.Org.ID, bystander.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobRunning, other.Status, "another worker's job is untouched")
	require.NotNil(t, other.WorkerID)
	assert.Equal(t, "w2", *other.WorkerID)

	_, err = s.DrainWorker(ctx, "w1")
	require.ErrorIs(t, err, store.ErrConflict, "an evicted worker cannot be drained")
	w, err = s.UpsertWorker(ctx, store.Worker{ID: "w1", PoolID: pool.ID, Lane: apiv1.LaneLive})
	require.NoError(t, err)
	assert.Equal(t, store.WorkerEvicted, w.Status, "a heartbeat does not undo an eviction")

	// Evicting again finds nothing to requeue.
	_, requeuedJobs, err = s.EvictWorker(ctx, "w1")
	require.NoError(t, err)
	assert.Empty(t, requeuedJobs)

	_, _, err = s.EvictWorker(ctx, "ghost")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestEvictIdleWorker(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	_, err := s.UpsertWorker(ctx, store.Worker{ID: "idle", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive})
	require.NoError(t, err)

	w, requeued, err := s.EvictWorker(ctx, "idle")
	require.NoError(t, err)
	assert.Equal(t, store.WorkerEvicted, w.Status)
	assert.Empty(t, requeued)
}

func TestListWorkersScope(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	b := bootstrap(t, s, "Other")
	poolA := createPool(t, s, a.Org.ID, "a")
	poolB := createPool(t, s, b.Org.ID, "b")

	for id, pool := range map[string]string{"wa": poolA.ID, "wb": poolB.ID, "ws": store.DefaultPoolID} {
		_, err := s.UpsertWorker(ctx, store.Worker{ID: id, PoolID: pool, Lane: apiv1.LaneLive})
		require.NoError(t, err)
	}
	ids := func(org store.Bootstrap, all bool) []string {
		ws, err := s.ListWorkers(ctx, org.Org.ID, all)
		require.NoError(t, err)
		var out []string
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	assert.Equal(t, []string{"wa"}, ids(a, false), "own pools only; the shared pool's workers are the platform's")
	assert.Equal(t, []string{"wb"}, ids(b, false))
	assert.ElementsMatch(t, []string{"wa", "wb", "ws"}, ids(a, true))
}
