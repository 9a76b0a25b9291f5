package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

type workerRow struct {
	Status     string
	HasCurrent bool
}

func (e *env) workers() map[string]workerRow {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT id, status, current_job_id IS NOT NULL FROM workers`)
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]workerRow{}
	for rows.Next() {
		var (
			id string
			r  workerRow
		)
		require.NoError(e.t, rows.Scan(&id, &r.Status, &r.HasCurrent))
		out[id] = r
	}
	require.NoError(e.t, rows.Err())
	return out
}

// TestStaleWorkerSweeperAndOfflineWorkerReaper: workers silent past the
// TTL go offline (a heartbeat or a claim keeps or brings them online), and
// offline workers are deleted once silent past the grace.
func TestStaleWorkerSweeperAndOfflineWorkerReaper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock() // T
	in := e.start(Config{Clock: fc, Lease: 4 * time.Hour}).
		withServices(ServicesConfig{WorkerTTL: 3 * time.Minute, OfflineGrace: 2 * time.Hour})
	w := e.worker(in.addr, store.DefaultPoolID)
	e.submit(store.DefaultPoolID, 2)
	busy := w.mustClaim(t, "pod-busy")
	w.mustClaim(t, "pod-silent")
	_, err := w.claim(t.Context(), "pod-back", 0) // registers, gets nothing
	require.NoError(t, err)
	require.Equal(t, map[string]workerRow{
		"pod-busy": {store.WorkerOnline, true}, "pod-silent": {store.WorkerOnline, true}, "pod-back": {store.WorkerOnline, false},
	}, e.workers())

	fc.Step(2 * time.Minute) // T+2m
	_, err = w.heartbeat(t.Context(), busy, 0.1)
	require.NoError(t, err)
	n, err := in.services.SweepStaleWorkers(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nobody silent for 3 minutes yet")

	fc.Step(2 * time.Minute) // T+4m
	n, err = in.services.SweepStaleWorkers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, map[string]workerRow{
		"pod-busy": {store.WorkerOnline, true}, "pod-silent": {store.WorkerOffline, false}, "pod-back": {store.WorkerOffline, false},
	}, e.workers())
	n, err = in.services.ReapOfflineWorkers(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "offline for minutes, not hours")

	fc.Step(time.Minute) // T+5m
	_, err = w.claim(t.Context(), "pod-back", 0)
	require.NoError(t, err)
	assert.Equal(t, store.WorkerOnline, e.workers()["pod-back"].Status, "a claim brings a worker back online")

	fc.Step(2*time.Hour - 4*time.Minute) // T+2h1m
	_, err = w.heartbeat(t.Context(), busy, 0.9)
	require.NoError(t, err)
	n, err = in.services.ReapOfflineWorkers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got := e.workers()
	assert.NotContains(t, got, "pod-silent", "reaped after 2 h")
	assert.Contains(t, got, "pod-busy")
	assert.Contains(t, got, "pod-back")
}
