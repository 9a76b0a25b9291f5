package store_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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
// 0.9 ms a row and most of Postgres's time).
// jobsIndex finds, in a plan, the indexes of the jobs table it scans
// (every one is named jobs_...).
var jobsIndex = regexp.MustCompile(`Scan (?:using|on) (jobs_\w+)`)

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
	for _, kind := range kinds {
		sql := store.HotPathStatements[kind]
		if kind == "claim" || kind == "complete" || kind == "heartbeat" {
			require.Contains(t, genericPlan(t, plain, sql), "Seq Scan on jobs",
				"%s: the plan an ordinary connection keeps (if this changed, Postgres plans differently and the hot path may no longer be needed)", kind)
		}
		plan := genericPlan(t, hot, sql)
		require.NotContains(t, plan, "Seq Scan", "%s on the hot path", kind)
		for _, m := range jobsIndex.FindAllStringSubmatch(plan, -1) {
			require.Equal(t, "jobs_pkey", m[1], "%s on the hot path finds jobs through another index than the primary key:\n%s", kind, plan)
		}
	}
}
