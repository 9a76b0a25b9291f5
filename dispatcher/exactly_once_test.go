package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestClaimExactlyOnceAcrossInstances drives 64 concurrent claimers through
// two coordinator instances sharing Postgres and Redis over 2,000 jobs, a
// tenth of whose ids sit on the list twice (right next to each other, so
// two claimers pop the same id at the same moment): every job is claimed
// exactly once, completes, and the list ends empty.
func TestClaimExactlyOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	const (
		jobs     = 2000
		claimers = 64
	)
	loadTests.RLock()
	defer loadTests.RUnlock()
	e := newEnv(t)
	instances := []*instance{e.start(Config{}), e.start(Config{})}
	require.NotEqual(t, instances[0].addr, instances[1].addr)

	begin := time.Now()
	ids := e.create(store.DefaultPoolID, jobs, 3)
	pushed := make([]uuid.UUID, 0, jobs+jobs/10)
	for i, id := range ids {
		pushed = append(pushed, id)
		if i%10 == 0 {
			pushed = append(pushed, id)
		}
	}
	e.push(store.DefaultPoolID, pushed...)
	require.EqualValues(t, jobs+jobs/10, e.queueLen(store.DefaultPoolID))
	t.Logf("created and pushed %d jobs (%d ids) in %s", jobs, len(pushed), time.Since(begin))

	var (
		mu     sync.Mutex
		claims = make(map[string]int, jobs)
	)
	begin = time.Now()
	workers := []*worker{e.worker(instances[0].addr, store.DefaultPoolID), e.worker(instances[1].addr, store.DefaultPoolID)}
	g, ctx := errgroup.WithContext(t.Context())
	for i := range claimers {
		w := workers[i%len(workers)]
		pod := fmt.Sprintf("pod-%02d", i)
		g.Go(func() error {
			for {
				j, err := w.claim(ctx, pod, 0)
				if err != nil {
					return fmt.Errorf("%s claim: %w", pod, err)
				}
				if j == nil {
					return nil // list empty
				}
				mu.Lock()
				claims[j.GetId()]++
				mu.Unlock()
				if err := w.complete(ctx, j); err != nil {
					return fmt.Errorf("%s complete %s: %w", pod, j.GetId(), err)
				}
			}
		})
	}
	require.NoError(t, g.Wait())
	t.Logf("%d claimers claimed and completed %d jobs in %s", claimers, len(claims), time.Since(begin))

	require.Len(t, claims, jobs, "every job claimed, none lost, nothing foreign")
	for _, id := range ids {
		assert.Equal(t, 1, claims[id.String()], "job %s claims", id)
	}
	for _, in := range instances {
		assert.Positive(t, mustMetric(t, in.metrics.Registry, "mpegflow_grpc_requests_total", map[string]string{"method": "Claim"}), "both instances served claims")
	}

	type row struct {
		Status   string `db:"status"`
		Attempts int    `db:"attempts"`
		Started  int    `db:"started"`
		N        int    `db:"n"`
	}
	rows, err := e.db.Query(context.Background(), `
		WITH per_job AS (
			SELECT j.status, j.attempts,
				(SELECT count(*) FROM job_events ev WHERE ev.job_id = j.id AND ev.type = 'job.started')::int AS started
			FROM jobs j)
		SELECT status, attempts, started, count(*)::int AS n FROM per_job GROUP BY 1, 2, 3`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	require.NoError(t, err)
	assert.Equal(t, []row{{Status: store.JobCompleted, Attempts: 1, Started: 1, N: jobs}}, got,
		"in Postgres every job is completed after one attempt with one job.started event")

	for _, lane := range apiv1.Lanes {
		n, err := e.queue.Len(context.Background(), store.DefaultPoolID, lane)
		require.NoError(t, err)
		assert.Zero(t, n, "%s list is empty afterwards", lane)
	}
}
