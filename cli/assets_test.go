package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

func TestAssetsCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	dir := t.TempDir()
	src := filepath.Join(dir, "source.mp4")
	require.NoError(t, os.WriteFile(src, []byte("source bytes"), 0o600))
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	id, err := uploadResumable(t.Context(), c, f, &strings.Builder{})
	require.NoError(t, err)

	var a client.Asset
	require.NoError(t, yaml.Unmarshal([]byte(runCLI(t, nil, "assets", "get", id, "-o", "yaml").OK(t)), &a))
	assert.Equal(t, "source.mp4", a.Filename)
	assert.Equal(t, "video/mp4", a.ContentType)
	require.NotNil(t, a.Download)

	var page client.Page[client.Asset]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "assets", "list", "-o", "json").OK(t)), &page))
	require.Len(t, page.Items, 1)
	assert.Contains(t, runCLI(t, nil, "assets", "list").OK(t), "12 B")

	// Default destination: the asset's filename in the working directory.
	work := t.TempDir()
	t.Chdir(work)
	assert.Equal(t, "source.mp4\n", runCLI(t, nil, "assets", "download", id).OK(t))
	b, err := os.ReadFile(filepath.Join(work, "source.mp4"))
	require.NoError(t, err)
	assert.Equal(t, "source bytes", string(b))

	assert.Equal(t, "source bytes", runCLI(t, nil, "assets", "download", id, "-o", "-").OK(t))

	assert.Equal(t, "mpegflow: get asset nope: 404 not-found: asset not found", runCLI(t, nil, "assets", "download", "nope").Failed(t, 1))
	assert.Equal(t, "mpegflow: usage: mpegflow assets download ID", runCLI(t, nil, "assets", "download").Failed(t, 2))
}

// TestAssetsDownloadRefusesHostileNames: the default destination is the
// asset's filename, which comes from the server. A name that is no plain
// file name here (one the API refuses today, stored by an older or hostile
// server) is not used: nothing is written and -o is suggested.
func TestAssetsDownloadRefusesHostileNames(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	work := t.TempDir()
	t.Chdir(work)
	for _, name := range []string{".", "..", "...", `..\x.mp4`, "a/b.mp4", "clip\u202egnp.exe", "clip\u2066.mp4", "a\u200bb.mp4", "a\x01b.mp4", " clip.mp4"} {
		t.Run(name, func(t *testing.T) {
			a, err := srv.Store.CreateAsset(t.Context(), srv.OrgID, name, "video/mp4", nil, func(id uuid.UUID) string {
				return "orgs/" + srv.OrgID.String() + "/assets/" + id.String() + "/source"
			})
			require.NoError(t, err)
			line := runCLI(t, nil, "assets", "download", a.ID.String()).Failed(t, 1)
			assert.Contains(t, line, "which is no plain file name here; choose one with -o FILE")
			entries, err := os.ReadDir(work)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written")
		})
	}
}
