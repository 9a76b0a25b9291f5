package cli

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

// breakAfter is a progress writer that fails once n bytes went by: the
// upload's body breaks off there, as when the network is lost.
type breakAfter struct{ n int64 }

func (b *breakAfter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		return 0, errors.New("network lost")
	}
	b.n -= int64(len(p))
	return len(p), nil
}

// TestAssetsUploadResumes: `mpegflow assets upload` sends a file above the
// server's threshold in parts (real S3 server). An upload that broke off
// after its first part is resumed by running the command again: it finds
// the asset in the user's cache directory, sends only what storage lacks,
// completes, prints the same asset id and forgets the state.
func TestAssetsUploadResumes(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true, Uploads: apiserver.UploadConfig{MultipartThreshold: 6 << 20, PartSize: 5 << 20}})
	useServer(t, srv.URL, srv.OwnerKey)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	states := func() []string {
		m, err := filepath.Glob(filepath.Join(cache, "mpegflow", "uploads", "*.json"))
		require.NoError(t, err)
		return m
	}
	data := make([]byte, 2*(5<<20)+999)
	_, _ = rand.Read(data)
	src := filepath.Join(t.TempDir(), "big.mov")
	require.NoError(t, os.WriteFile(src, data, 0o600))

	// In one go: a new asset, uploaded, nothing remembered.
	id := runCLI(t, nil, "assets", "upload", src).OK(t)
	require.NotEmpty(t, id)
	assert.Empty(t, states())
	assert.True(t, bytes.Equal(data, []byte(runCLI(t, nil, "assets", "download", id[:len(id)-1], "-o", "-").OK(t))))

	// Broken off after the first part, with the state the command keeps.
	c, err := client.New(srv.URL, srv.OwnerKey, client.Config{PartConcurrency: 1})
	require.NoError(t, err)
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	size := st.Size()
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", SizeBytes: &size})
	require.NoError(t, err)
	path, err := uploadStatePath(c.Server(), f, st)
	require.NoError(t, err)
	require.NoError(t, writeUploadState(path, uploadState{Server: c.Server(), File: src, AssetID: a.ID}))
	require.Error(t, c.UploadAsset(t.Context(), a, f, &breakAfter{n: 5 << 20}))
	stored, err := c.UploadedParts(t.Context(), a.ID)
	require.NoError(t, err)
	require.Len(t, stored, 1)

	r := runCLI(t, nil, "assets", "upload", src)
	assert.Equal(t, a.ID+"\n", r.OK(t), "the same asset")
	assert.Contains(t, r.Stderr, "resuming the upload of big.mov")
	assert.Empty(t, states(), "the finished upload is forgotten")
	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", got.UploadStatus)
	assert.True(t, bytes.Equal(data, []byte(runCLI(t, nil, "assets", "download", a.ID, "-o", "-").OK(t))))

	// State naming an upload that completed without the command hearing
	// it (cut off while the server joined the parts): the same asset,
	// nothing sent again.
	require.NoError(t, writeUploadState(path, uploadState{Server: c.Server(), File: src, AssetID: a.ID}))
	assert.Equal(t, a.ID+"\n", runCLI(t, nil, "assets", "upload", src).OK(t))
	assert.Empty(t, states())

	// State naming an upload that was aborted is dropped: a new asset.
	aborted, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", SizeBytes: &size})
	require.NoError(t, err)
	_, err = c.AbortUpload(t.Context(), aborted.ID)
	require.NoError(t, err)
	require.NoError(t, writeUploadState(path, uploadState{Server: c.Server(), File: src, AssetID: aborted.ID}))
	again := runCLI(t, nil, "assets", "upload", src).OK(t)
	assert.NotEqual(t, aborted.ID+"\n", again)
	assert.NotEqual(t, a.ID+"\n", again)
	assert.Empty(t, states())
}
