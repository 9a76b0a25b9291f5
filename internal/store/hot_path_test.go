package store_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// genericPlan is the plan Postgres keeps for sql once pgx has prepared it
// on conn and run it a few times (its generic plan), as EXPLAIN prints it.
func genericPlan(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	ctx := t.Context()
	params := 0
	for _, m := range regexp.MustCompile(`\$(\d+)`).FindAllStringSubmatch(sql, -1) {
		n, _ := strconv.Atoi(m[1])
		params = max(params, n)
	}
	_, err := conn.Exec(ctx, "PREPARE hot AS "+sql)
	require.NoError(t, err)
	defer func() { _, _ = conn.Exec(ctx, "DEALLOCATE hot") }()
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE hot("+strings.Repeat("NULL, ", params-1)+"NULL)")
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}

// jobsIndex finds, in a plan, the indexes of the jobs table it scans
// (every one is named jobs_...).
var jobsIndex = regexp.MustCompile(`Scan(?: Backward)? (?:using|on) (jobs_\w+)`)

// TestHotPathPlansFindRowsByKey: on a new database (jobs empty, never
// analyzed) the claim, completion and heartbeat statements' generic plans
// on an ordinary connection scan the jobs table sequentially, the plan
// they would keep as the table grows; on the hot path's connections
// (store.HotPathConfig) no statement of the hot path scans any table
// sequentially, and none finds a job through an index other than the
// primary key. Barred from a sequential scan, the planner took a whole
// other index for one: the claim and completion batches' UPDATEs once
// found each row by scanning all of jobs_org_created_idx (its id column
// is its last), a cost that grows with the table (with 40,000 jobs,
// 0.9 ms a row and most of Postgres's time). The same is asked again once
// the table has grown to 30,000 jobs and been analyzed: with statistics
// the old statements found jobs by the primary key too (the new database
// is what catches them), so that step guards the statements against the
// plans real statistics bring.
func TestHotPathPlansFindRowsByKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.DatabaseURL(t)
	connect := func(hot bool) *pgx.Conn {
		cfg, err := pgx.ParseConfig(url)
		require.NoError(t, err)
		if hot {
			store.HotPathConfig(cfg)
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(ctx) })
		_, err = conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
		require.NoError(t, err)
		return conn
	}
	plain, hot := connect(false), connect(true)
	kinds := make([]string, 0, len(store.HotPathStatements))
	for k := range store.HotPathStatements {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	byKey := func(grown string) {
		for _, kind := range kinds {
			plan := genericPlan(t, hot, store.HotPathStatements[kind])
			require.NotContains(t, plan, "Seq Scan", "%s on the hot path%s", kind, grown)
			for _, m := range jobsIndex.FindAllStringSubmatch(plan, -1) {
				require.Equal(t, "jobs_pkey", m[1], "%s on the hot path%s finds jobs through another index than the primary key:\n%s", kind, grown, plan)
			}
		}
	}
	for _, kind := range []string{"claim", "complete", "heartbeat"} {
		require.Contains(t, genericPlan(t, plain, store.HotPathStatements[kind]), "Seq Scan on jobs",
			"%s: the plan an ordinary connection keeps (if this changed, Postgres plans differently and the hot path may no longer be needed)", kind)
	}
	byKey("")

	// Grown: one organization's job copied 30,000 times, a third each
	// queued, running and completed, then analyzed.
	db, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	s := store.New(db)
	job := createJob(t, s, urlJob(bootstrap(t, s, "Grown").Org.ID))
	_, err = plain.Exec(ctx, `
		INSERT INTO jobs (id, org_id, pool_id, lane, status, input_url, spec, max_attempts, metadata, created_at)
		SELECT gen_random_uuid(), org_id, pool_id, lane, (ARRAY['queued', 'running', 'completed'])[1 + g % 3],
			input_url, spec, max_attempts, metadata, created_at - g * interval '1 millisecond'
		FROM jobs j, generate_series(1, 30000) g WHERE j.id = $1`, job.ID)
	require.NoError(t, err)
	_, err = plain.Exec(ctx, "ANALYZE jobs")
	require.NoError(t, err)
	byKey(" (30,000 jobs, analyzed)")
}
