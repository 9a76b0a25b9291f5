package store_test

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	}{{1, "core"}, {2, "pools"}, {3, "jobs"}, {4, "webhooks_usage"}, {5, "operator_role"}, {6, "webhook_delivery"}, {7, "batches"}, {8, "storage_grants"}}
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
		TargetQueueLength: 1, BackfillMaxReplicas: 10, CronWindows: []store.CronWindow{},
		NodeSelector: map[string]string{}, Tolerations: []store.Toleration{},
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
