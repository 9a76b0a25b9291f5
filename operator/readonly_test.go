package operator

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestCheckReadOnly runs the start-up check against real Postgres logins:
// the operator's (role mpegflow_operator) passes; the owner's, and an
// operator login someone granted one write privilege, are refused by a
// *WriteLoginError naming the privilege, unless writing is allowed.
func TestCheckReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ownerURL := testenv.DatabaseURL(t) // the superuser that migrated the database

	// An operator login with one write privilege too many.
	grantedURL := testenv.OperatorLogin(t, ownerURL, ownerURL)
	u, err := url.Parse(grantedURL)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, ownerURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "GRANT UPDATE ON worker_pools TO "+pgx.Identifier{u.User.Username()}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "REVOKE ALL ON worker_pools FROM "+pgx.Identifier{u.User.Username()}.Sanitize())
	})

	for name, tc := range map[string]struct {
		url        string
		allowWrite bool
		want       []string // the privileges the error names; nil: accepted
		warns      bool
	}{
		"the operator's login":        {url: testenv.OperatorLogin(t, ownerURL, ownerURL)},
		"the owner's login":           {url: ownerURL, want: []string{"INSERT on public.api_keys", "UPDATE on public.api_keys", "DELETE on public.api_keys"}},
		"the owner's login, allowed":  {url: ownerURL, allowWrite: true, warns: true},
		"one UPDATE granted":          {url: grantedURL, want: []string{"UPDATE on public.worker_pools"}},
		"one UPDATE granted, allowed": {url: grantedURL, allowWrite: true, warns: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, err := store.Open(ctx, tc.url)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			var logs bytes.Buffer
			err = CheckReadOnly(ctx, store.New(pool), tc.allowWrite, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.want == nil {
				require.NoError(t, err)
				if tc.warns {
					require.Contains(t, logs.String(), "level=WARN")
					require.Contains(t, logs.String(), "MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN=true")
				} else {
					require.Empty(t, logs.String())
				}
				return
			}
			var werr *WriteLoginError
			require.ErrorAs(t, err, &werr)
			for _, p := range tc.want {
				require.Contains(t, err.Error(), p, "the error names the privilege")
			}
			require.Contains(t, err.Error(), "MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN=true", "the error names the override")
			require.Contains(t, err.Error(), "mpegflow_operator", "the error names the role to use")
			if len(tc.want) == 1 {
				require.Len(t, werr.Privileges, 1, "exactly the granted privilege: %v", werr.Privileges)
			} else {
				require.Greater(t, len(werr.Privileges), 30, "the owner can write every table: %v", werr.Privileges)
			}
		})
	}
}

// TestRunRefusesWriteLogin: `mpegflow operator` given the owner's login
// exits before it campaigns for the Lease or serves anything.
func TestRunRefusesWriteLogin(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Namespace = "never-used"
	run := RunConfig{DatabaseURL: testenv.DatabaseURL(t), Period: time.Second, HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		Leader: LeaderConfig{Namespace: cfg.Namespace, Identity: "refused"}}
	err := Run(context.Background(), cfg, run, testREST, slog.New(slog.DiscardHandler))
	var werr *WriteLoginError
	require.ErrorAs(t, err, &werr)
	require.Contains(t, err.Error(), "INSERT on public.")
}
