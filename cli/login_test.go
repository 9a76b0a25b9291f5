package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestLoginAndContexts logs in to a real server with keys of two roles and
// switches between the contexts. (Not parallel: it sets the environment.)
func TestLoginAndContexts(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	set := store.DefaultPoolSettings()
	set.Name = "Owned"
	pool, err := srv.Store.CreatePool(t.Context(), srv.OrgID, set)
	require.NoError(t, err)
	cfgPath := filepath.Join(t.TempDir(), "mpegflow", "config.json")
	t.Setenv("MPEGFLOW_CONFIG", cfgPath)
	t.Setenv("MPEGFLOW_SERVER", "")
	t.Setenv("MPEGFLOW_API_KEY", "")

	// The owner's key on standard input, saved as "prod".
	out := runCLI(t, strings.NewReader(srv.OwnerKey+"\n"), "login", "--server", srv.URL+"/", "--context", "prod").OK(t)
	assert.Equal(t, `Logged in to "Client Test" at `+srv.URL+`; context "prod" is current (`+cfgPath+")\n", out)
	fi, err := os.Stat(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	f, err := cliconfig.Load(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, cliconfig.Context{Server: srv.URL, APIKey: srv.OwnerKey}, f.Contexts["prod"])

	// The viewer's key from the environment, under the default name.
	t.Setenv("MPEGFLOW_API_KEY", srv.ViewerKey)
	runCLI(t, nil, "login", "--server", srv.URL).OK(t)
	t.Setenv("MPEGFLOW_API_KEY", "")
	host := strings.TrimPrefix(srv.URL, "http://")

	// A refused key and missing input save nothing.
	line := runCLI(t, strings.NewReader("mfk_not_a_key\n"), "login", "--server", srv.URL, "--context", "bad").Failed(t, 1)
	assert.True(t, strings.HasPrefix(line, "mpegflow: check the API key with "+srv.URL+": 401 "), line)
	assert.Equal(t, "mpegflow: no API key: set MPEGFLOW_API_KEY or give it on standard input",
		runCLI(t, strings.NewReader("\n"), "login", "--server", srv.URL, "--context", "bad").Failed(t, 2))
	assert.Equal(t, "mpegflow: login needs --server URL", runCLI(t, strings.NewReader(srv.OwnerKey), "login").Failed(t, 2))
	assert.Contains(t, runCLI(t, strings.NewReader(srv.OwnerKey), "login", "--server", srv.URL, "--api-key", srv.OwnerKey).Failed(t, 2),
		"unknown flag: --api-key", "a key on the command line would land in shell history")

	// get-contexts lists both, the viewer's current, and never a key.
	out = runCLI(t, nil, "config", "get-contexts").OK(t)
	assert.Equal(t, [][]string{{"CURRENT", "NAME", "SERVER"}, {"*", host, srv.URL}, {"-", "prod", srv.URL}}, fields(out))
	var views []contextView
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "config", "get-contexts", "-o", "json").OK(t)), &views))
	assert.Equal(t, []contextView{{Name: host, Server: srv.URL, Current: true}, {Name: "prod", Server: srv.URL}}, views)
	for _, o := range []string{"table", "json", "yaml"} {
		out := runCLI(t, nil, "config", "get-contexts", "-o", o).OK(t)
		assert.NotContains(t, out, srv.OwnerKey)
		assert.NotContains(t, out, srv.ViewerKey)
	}

	// The current context is the viewer's; --context picks the owner's for
	// one command, even over $MPEGFLOW_API_KEY.
	assert.Contains(t, runCLI(t, nil, "pools", "pause", pool.ID).Failed(t, 1), "403 forbidden")
	t.Setenv("MPEGFLOW_API_KEY", srv.ViewerKey)
	runCLI(t, nil, "--context", "prod", "pools", "pause", pool.ID).OK(t)
	runCLI(t, nil, "pools", "resume", pool.ID, "--context", "prod").OK(t)
	t.Setenv("MPEGFLOW_API_KEY", "")
	assert.Equal(t, `mpegflow: context "nope" in `+cfgPath+": no such context (`mpegflow config get-contexts` lists them)",
		runCLI(t, nil, "--context", "nope", "pools", "list").Failed(t, 1))

	// use-context switches for good.
	assert.Equal(t, "context \"prod\" is current\n", runCLI(t, nil, "config", "use-context", "prod").OK(t))
	runCLI(t, nil, "pools", "pause", pool.ID).OK(t)
	assert.Equal(t, `mpegflow: context "nope" in `+cfgPath+": no such context", runCLI(t, nil, "config", "use-context", "nope").Failed(t, 1))
	assert.Equal(t, "mpegflow: usage: mpegflow config use-context NAME", runCLI(t, nil, "config", "use-context").Failed(t, 2))
	f, err = cliconfig.Load(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, "prod", f.Current)
	assert.NotContains(t, f.Contexts, "bad")
}

// fields splits output into lines of whitespace-separated fields.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}
