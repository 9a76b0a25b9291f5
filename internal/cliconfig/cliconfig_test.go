package cliconfig_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/cliconfig"
)

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, cliconfig.SetCurrent(path, "prod", cliconfig.Context{Server: "https://prod.example", APIKey: "k-prod"}))
	require.NoError(t, cliconfig.SetCurrent(path, "dev", cliconfig.Context{Server: "http://localhost:8080", APIKey: "k-dev"}))

	for name, tc := range map[string]struct {
		env              map[string]string
		server, key, ctx string
		want             cliconfig.Context
	}{
		"current context":          {want: cliconfig.Context{Server: "http://localhost:8080", APIKey: "k-dev"}},
		"environment over current": {env: map[string]string{"MPEGFLOW_API_KEY": "k-env"}, want: cliconfig.Context{Server: "http://localhost:8080", APIKey: "k-env"}},
		"named context over environment": {env: map[string]string{"MPEGFLOW_SERVER": "https://env.example", "MPEGFLOW_API_KEY": "k-env"}, ctx: "prod",
			want: cliconfig.Context{Server: "https://prod.example", APIKey: "k-prod"}},
		"flags over named context": {server: "https://flag.example", ctx: "prod", want: cliconfig.Context{Server: "https://flag.example", APIKey: "k-prod"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"MPEGFLOW_CONFIG": path}
			for k, v := range tc.env {
				env[k] = v
			}
			got, err := cliconfig.Resolve(func(k string) string { return env[k] }, tc.server, tc.key, tc.ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

}

func TestUseAndUnknownContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, cliconfig.SetCurrent(path, "prod", cliconfig.Context{Server: "https://prod.example", APIKey: "k-prod"}))
	require.NoError(t, cliconfig.SetCurrent(path, "dev", cliconfig.Context{Server: "http://localhost:8080", APIKey: "k-dev"}))
	getenv := func(k string) string { return map[string]string{"MPEGFLOW_CONFIG": path}[k] }
	_, err := cliconfig.Resolve(getenv, "", "", "staging")
	require.ErrorIs(t, err, cliconfig.ErrNoSuchContext)
	require.ErrorIs(t, cliconfig.Use(path, "staging"), cliconfig.ErrNoSuchContext)
	require.NoError(t, cliconfig.Use(path, "prod"))
	got, err := cliconfig.Resolve(getenv, "", "", "")
	require.NoError(t, err)
	assert.Equal(t, "k-prod", got.APIKey)
}
