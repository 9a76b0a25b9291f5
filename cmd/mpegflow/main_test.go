package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/cli"
	"github.com/mpegflow/mpegflow/cli/clitest"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// runCLI runs the binary's root command with args and stdin as its input.
func runCLI(t *testing.T, stdin io.Reader, args ...string) clitest.Result {
	t.Helper()
	return clitest.Run(t, rootCmd(), cli.ExitCode, stdin, args...)
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestMigrateAndBootstrap drives the real CLI against a real database: the
// migrations go down and up again, and bootstrap prints a key that works.
// (Not parallel: it sets the process environment.)
func TestMigrateAndBootstrap(t *testing.T) {
	dbURL := testenv.DatabaseURL(t) // already migrated up
	t.Setenv("DATABASE_URL", dbURL)

	out, err := run(t, "migrate", "status")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "pending")
	assert.Regexp(t, `0001  core\s+applied`, out)

	out, err = run(t, "migrate", "down", "--steps", "100")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "applied")
	assert.Contains(t, out, "current version: 0")

	out, err = run(t, "migrate", "up")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "pending")

	_, err = run(t, "admin", "bootstrap", "--org", "Acme", "--email", "not an email")
	require.Error(t, err)

	out, err = run(t, "admin", "bootstrap", "--org", "Acme Broadcasting", "--email", "ops@acme.example")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`api key \(shown once, store it now\): (\S+)`).FindStringSubmatch(out)
	require.Len(t, m, 2, out)

	pool, err := store.Open(t.Context(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	p, err := store.New(pool).Authenticate(t.Context(), m[1])
	require.NoError(t, err)
	assert.Equal(t, auth.Owner, p.Role)
	assert.True(t, strings.HasPrefix(m[1], "mfk_"))
}

func TestMissingConfigurationIsAClearError(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	_, err := run(t, "migrate", "status")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATABASE_URL")
	t.Setenv("MPEGFLOW_LOG_LEVEL", "loud")
	_, err = run(t, "serve")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MPEGFLOW_LOG_LEVEL")
}

// TestDevEnvWithoutARun is a clear error, not a stack trace.
func TestDevEnvWithoutARun(t *testing.T) {
	t.Parallel()
	_, err := run(t, "dev", "env", "--data", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "start `mpegflow dev")
}
