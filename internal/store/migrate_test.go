package store_test

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// schemaQuery describes every object in the public schema except
// golang-migrate's own bookkeeping table, one line each.
const schemaQuery = `
	SELECT 'relation ' || c.relkind::text || ' ' || c.relname
	FROM pg_class c
	WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE 'schema_migrations%'
	UNION ALL
	SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable
		|| ' default=' || coalesce(column_default, '')
	FROM information_schema.columns
	WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
	UNION ALL
	SELECT 'index ' || indexdef
	FROM pg_indexes
	WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
	UNION ALL
	SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	FROM pg_constraint
	WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'schema_migrations'
	UNION ALL
	SELECT 'type ' || typname
	FROM pg_type
	WHERE typnamespace = 'public'::regnamespace AND typtype IN ('d', 'e', 'r', 'm')
	UNION ALL
	SELECT 'function ' || proname
	FROM pg_proc
	WHERE pronamespace = 'public'::regnamespace
	ORDER BY 1`

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.DatabaseURL(t) // migrated to the latest version
	db, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	m, err := store.NewMigrator(url, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })

	schema := func() []string {
		t.Helper()
		rows, err := db.Query(ctx, schemaQuery)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			out = append(out, line)
		}
		require.NoError(t, rows.Err())
		return out
	}
	status := func() ([]store.MigrationStatus, uint) {
		t.Helper()
		list, current, dirty, err := m.Status()
		require.NoError(t, err)
		require.False(t, dirty)
		return list, current
	}
	// Versions may have gaps (numbers are reserved per change and land in
	// any order); golang-migrate steps over them.
	migrations := []struct {
		version uint
		name    string
	}{{1, "core"}, {2, "pools"}, {3, "jobs"}, {4, "webhooks_usage"}, {5, "operator_role"}, {6, "webhook_delivery"}, {7, "batches"}, {8, "storage_grants"}, {9, "member_identity"}, {10, "multipart_uploads"}, {11, "warm_idle"}, {12, "platform_policy"}, {13, "pause_windows"}, {14, "share_weight"}, {15, "content_keys"}, {16, "job_captions"}, {17, "job_tasks"}, {18, "split_parts"}, {19, "console_sessions"}, {20, "pool_resumed_at"}, {21, "batch_manifest_etag"}, {22, "webhook_delivery_fairness"}, {23, "jobs_per_pod"}}
	versions := []uint{0}
	for _, m := range migrations {
		versions = append(versions, m.version)
	}
	latest := versions[len(versions)-1]
	wantStatus := func(applied uint) []store.MigrationStatus {
		out := make([]store.MigrationStatus, len(migrations))
		for i, m := range migrations {
			out[i] = store.MigrationStatus{Version: m.version, Name: m.name, Applied: m.version <= applied}
		}
		return out
	}

	// Up on an up-to-date database is a no-op, not an error.
	require.NoError(t, m.Up())
	list, current := status()
	assert.Equal(t, latest, current)
	if diff := cmp.Diff(wantStatus(latest), list); diff != "" {
		t.Fatalf("status after up (-want +got):\n%s", diff)
	}
	seeded, err := store.New(db).GetPool(ctx, store.PoolScope{Shared: true}, store.DefaultPoolID)
	require.NoError(t, err, "migration 0002 seeds the shared default pool")
	assert.True(t, seeded.Shared())

	// Walk down one step at a time, remembering the schema at each version.
	down := map[uint][]string{latest: schema()}
	require.Contains(t, down[latest], "relation r jobs", "the schema query sees the tables")
	require.Contains(t, down[latest], "index CREATE UNIQUE INDEX jobs_idempotency_key ON public.jobs USING btree (org_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)")
	for i := len(versions) - 1; i > 0; i-- {
		v, prev := versions[i], versions[i-1]
		require.NoError(t, m.Down(1), "down from version %d", v)
		list, current := status()
		require.Equal(t, prev, current)
		if diff := cmp.Diff(wantStatus(prev), list); diff != "" {
			t.Fatalf("status at version %d (-want +got):\n%s", prev, diff)
		}
		down[prev] = schema()
	}
	assert.Empty(t, down[0], "after every down migration nothing but golang-migrate's table is left")

	// Walk back up: each version's schema must equal the one the down
	// migrations left, or a down file forgot (or over-dropped) something.
	for _, v := range versions[1:] {
		require.NoError(t, m.StepUp(1), "up to version %d", v)
		_, current := status()
		require.Equal(t, v, current)
		if diff := cmp.Diff(down[v], schema()); diff != "" {
			t.Errorf("schema at version %d differs between the way down and the way up (-down +up):\n%s", v, diff)
		}
	}

	// Down everything at once, then Up again, ends where we started.
	require.NoError(t, m.Down(len(migrations)))
	_, current = status()
	require.Zero(t, current)
	require.NoError(t, m.Up())
	_, current = status()
	require.Equal(t, latest, current)
	assert.Equal(t, down[latest], schema())

	got, err := store.New(db).GetPool(ctx, store.PoolScope{Shared: true}, store.DefaultPoolID)
	require.NoError(t, err, "the default pool is seeded again after down and up")
	want := store.Pool{ID: store.DefaultPoolID, OrgID: nil, Status: "active", PoolSettings: store.PoolSettings{
		Name: "Shared pool", Accelerator: "cpu", MinReplicas: 0, MaxReplicas: 50, PollingIntervalSeconds: 10,
		TargetQueueLength: 1, BackfillMaxReplicas: 10, WarmIdleSeconds: 300, JobsPerPod: 1, CronWindows: []store.CronWindow{},
		NodeSelector: map[string]string{}, Tolerations: []store.Toleration{}, PauseWindows: []store.PauseWindow{},
	}}
	got.CreatedAt, got.UpdatedAt = want.CreatedAt, want.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seeded pool (-want +got):\n%s", diff)
	}
	assert.NoError(t, got.Validate(), "the seeded pool passes the settings validation")
}

func TestMigratorDownZeroStepsIsOne(t *testing.T) {
	t.Parallel()
	m, err := store.NewMigrator(testenv.DatabaseURL(t), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })

	list, latest, _, err := m.Status()
	require.NoError(t, err)
	require.Equal(t, list[len(list)-1].Version, latest, "the test database starts fully migrated")
	require.NoError(t, m.Down(0))
	_, current, dirty, err := m.Status()
	require.NoError(t, err)
	assert.False(t, dirty)
	assert.Equal(t, list[len(list)-2].Version, current, "one step down")
}

// TestMemberIdentityMigration: 0009 gives every membership the user's name
// and address, and its down migration puts a name back on the user (the one
// the latest organization to add them with a name gave, as the global column
// held) and revokes issued keys that would otherwise act above their role.
func TestMemberIdentityMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.DatabaseURL(t)
	db, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	m, err := store.NewMigrator(url, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := db.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	rows := func(sql string, args ...any) []string {
		t.Helper()
		r, err := db.Query(ctx, sql, args...)
		require.NoError(t, err)
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	// Migrations after 0009 are undone with it.
	list, _, _, err := m.Status()
	require.NoError(t, err)
	since9 := 0
	for _, st := range list {
		if st.Applied && st.Version >= 9 {
			since9++
		}
	}
	require.NoError(t, m.Down(since9), "back to the schema before 0009")

	orgA, orgB, x, y := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	exec(`INSERT INTO organizations (id, name) VALUES ($1, 'A'), ($2, 'B')`, orgA, orgB)
	exec(`INSERT INTO users (id, email, name) VALUES ($1, 'X@example.com', 'Xavier'), ($2, 'y@example.com', '')`, x, y)
	exec(`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES
		($1, $3, 'admin', '2026-01-01'), ($2, $3, 'viewer', '2026-01-02'), ($1, $4, 'owner', '2026-01-03')`, orgA, orgB, x, y)

	require.NoError(t, m.Up())
	assert.Equal(t, []string{"A X@example.com Xavier", "A y@example.com ", "B X@example.com Xavier"},
		rows(`SELECT o.name || ' ' || m.email || ' ' || m.name FROM memberships m JOIN organizations o ON o.id = m.org_id ORDER BY 1`))
	assert.Empty(t, rows(`SELECT column_name::text FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'`),
		"the global name is gone")

	// A and B name X differently; A's name is the older one. A key issued
	// below X's role in A would act as an admin without the role column.
	exec(`UPDATE memberships SET name = 'Alice' WHERE org_id = $1 AND user_id = $2`, orgA, x)
	exec(`UPDATE memberships SET name = 'Mallory' WHERE org_id = $1 AND user_id = $2`, orgB, x)
	exec(`INSERT INTO api_keys (id, org_id, user_id, prefix, hash, role) VALUES
		($1, $3, $4, 'mfk_lowered0', '\x00', 'viewer'), ($2, $3, $4, 'mfk_samerole', '\x00', 'admin'),
		(gen_random_uuid(), $3, $4, 'mfk_ownkey00', '\x00', NULL)`, uuid.New(), uuid.New(), orgA, x)

	require.NoError(t, m.Down(since9))
	assert.Equal(t, []string{"X@example.com Mallory", "y@example.com "}, rows(`SELECT email || ' ' || name FROM users ORDER BY 1`))
	assert.Equal(t, []string{"mfk_lowered0 revoked", "mfk_ownkey00 active", "mfk_samerole active"},
		rows(`SELECT prefix || CASE WHEN revoked_at IS NULL THEN ' active' ELSE ' revoked' END FROM api_keys ORDER BY 1`))
}
