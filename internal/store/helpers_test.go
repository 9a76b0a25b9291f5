package store_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// newStore gives the test a store on its own fresh, migrated database, and
// the raw pool for the few checks the store has no method for.
func newStore(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	db := testenv.Postgres(t)
	return store.New(db), db
}

// bootstrap creates an organization whose owner is <name>@example.com.
func bootstrap(t *testing.T, s *store.Store, name string) store.Bootstrap {
	t.Helper()
	b, err := s.BootstrapOrg(t.Context(), name, strings.ToLower(name)+"@example.com", auth.Owner)
	require.NoError(t, err)
	return b
}

var testSpec = json.RawMessage(`{"renditions": [{"codec": "h264", "height": 720}], "packaging": "hls"}`)

// urlJob is a valid submission to the shared pool with a URL input and an
// inline spec; tests change the fields they care about.
func urlJob(orgID uuid.UUID) store.NewJob {
	u := "https://media.example.com/input.mp4"
	return store.NewJob{
		OrgID:       orgID,
		PoolID:      store.DefaultPoolID,
		Lane:        apiv1.LaneLive,
		MaxAttempts: 3,
		InputURL:    &u,
		Spec:        testSpec,
		Metadata:    json.RawMessage(`{}`),
	}
}

func createJob(t *testing.T, s *store.Store, nj store.NewJob) store.Job {
	t.Helper()
	j, created, err := s.CreateJob(t.Context(), nj)
	require.NoError(t, err)
	require.True(t, created)
	return j
}

func poolSettings(name string) store.PoolSettings {
	set := store.DefaultPoolSettings()
	set.Name = name
	return set
}

func createPool(t *testing.T, s *store.Store, orgID uuid.UUID, name string) store.Pool {
	t.Helper()
	p, err := s.CreatePool(t.Context(), orgID, poolSettings(name))
	require.NoError(t, err)
	return p
}

func assetKey(id uuid.UUID) string { return "assets/" + id.String() }

func createAsset(t *testing.T, s *store.Store, orgID uuid.UUID) store.Asset {
	t.Helper()
	size := int64(1 << 20)
	a, err := s.CreateAsset(t.Context(), orgID, "input.mp4", "video/mp4", &size, assetKey)
	require.NoError(t, err)
	return a
}

// count runs a SELECT count(*) query.
func count(t *testing.T, db *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(t.Context(), query, args...).Scan(&n))
	return n
}

func eventTypes(es []store.JobEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	ve, ok := validation.As(err)
	require.True(t, ok, "want validation.Errors, got %v", err)
	out := make([]string, len(ve))
	for i, fe := range ve {
		out[i] = fe.Field
	}
	return out
}
