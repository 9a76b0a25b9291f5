package dispatcher

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestMetrics: request and outcome counters follow the calls made, and the
// fleet gauges read the cluster-wide state from Postgres and Redis, so an
// instance that served nothing reports the same values.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.start(Config{}), e.start(Config{})
	a.metrics.RegisterFleet(a.coord, slog.New(slog.DiscardHandler))
	b.metrics.RegisterFleet(b.coord, slog.New(slog.DiscardHandler))
	idle := e.pool("idle")
	w := e.worker(a.addr, store.DefaultPoolID)
	e.submit(store.DefaultPoolID, 6)

	for i := range 2 {
		require.NoError(t, w.complete(t.Context(), w.mustClaim(t, fmt.Sprintf("pod-%d", i))))
	}
	_, err := w.fail(t.Context(), w.mustClaim(t, "pod-2"), "unsupported codec", false)
	require.NoError(t, err)
	w.mustClaim(t, "pod-3") // stays running

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"claims", "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"}, 4},
		{"completes", "mpegflow_grpc_requests_total", map[string]string{"method": "Complete"}, 2},
		{"fails", "mpegflow_grpc_requests_total", map[string]string{"method": "Fail"}, 1},
		{"completed jobs", "mpegflow_jobs_total", map[string]string{"status": "completed"}, 2},
		{"failed jobs", "mpegflow_jobs_total", map[string]string{"status": "failed"}, 1},
		{"cancelled jobs", "mpegflow_jobs_total", map[string]string{"status": "cancelled"}, 0},
		{"queue depth", "mpegflow_queue_depth", map[string]string{"pool_id": "default"}, 2},
		{"jobs in flight", "mpegflow_jobs_in_flight", map[string]string{"pool_id": "default"}, 1},
		{"online workers", "mpegflow_worker_count", map[string]string{"pool_id": "default", "status": "online"}, 4},
		{"idle pool depth", "mpegflow_queue_depth", map[string]string{"pool_id": idle.ID}, 0},
		{"idle pool in flight", "mpegflow_jobs_in_flight", map[string]string{"pool_id": idle.ID}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.InDelta(t, tt.want, mustMetric(t, a.metrics.Registry, tt.metric, tt.labels), 0)
		})
	}

	t.Run("fleet gauges are cluster-wide", func(t *testing.T) {
		t.Parallel()
		assert.InDelta(t, 2, mustMetric(t, b.metrics.Registry, "mpegflow_queue_depth", map[string]string{"pool_id": "default"}), 0)
		assert.InDelta(t, 1, mustMetric(t, b.metrics.Registry, "mpegflow_jobs_in_flight", map[string]string{"pool_id": "default"}), 0)
		assert.InDelta(t, 4, mustMetric(t, b.metrics.Registry, "mpegflow_worker_count", map[string]string{"pool_id": "default", "status": "online"}), 0)
		claims, _ := metricValue(t, b.metrics.Registry, "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"})
		assert.Zero(t, claims, "instance B served no claims")
	})
}
