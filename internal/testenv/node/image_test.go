//go:build cluster

package node_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

// readArchive returns the archive's files by name.
func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[hdr.Name] = data
	}
}

// blob returns the blob a descriptor names, checking its size and digest.
func blob(t *testing.T, files map[string][]byte, desc map[string]any) []byte {
	t.Helper()
	dgst, _ := desc["digest"].(string)
	data, ok := files["blobs/sha256/"+strings.TrimPrefix(dgst, "sha256:")]
	require.True(t, ok, "blob %s missing", dgst)
	sum := sha256.Sum256(data)
	require.Equal(t, dgst, "sha256:"+hex.EncodeToString(sum[:]))
	require.EqualValues(t, desc["size"], len(data))
	return data
}

func TestImageArchive(t *testing.T) {
	t.Parallel()
	exe := []byte("\x7fELF not really, but bytes to carry")
	img := node.Image{Name: "localhost/mpegflow/pause:abc123", Path: "/pause", Executable: exe}
	var first, second bytes.Buffer
	require.NoError(t, img.WriteArchive(&first))
	require.NoError(t, img.WriteArchive(&second))
	require.Equal(t, first.Bytes(), second.Bytes(), "the same image must give the same bytes")

	files := readArchive(t, first.Bytes())
	require.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(files["oci-layout"]))

	var index struct {
		Manifests []map[string]any `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	annotations, _ := index.Manifests[0]["annotations"].(map[string]any)
	require.Equal(t, "localhost/mpegflow/pause:abc123", annotations["io.containerd.image.name"])
	require.Equal(t, "abc123", annotations["org.opencontainers.image.ref.name"])

	var manifest struct {
		Config map[string]any   `json:"config"`
		Layers []map[string]any `json:"layers"`
	}
	require.NoError(t, json.Unmarshal(blob(t, files, index.Manifests[0]), &manifest))
	require.Len(t, manifest.Layers, 1)
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	require.NoError(t, json.Unmarshal(blob(t, files, manifest.Config), &config))
	require.Equal(t, []string{"/pause"}, config.Config.Entrypoint)

	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, manifest.Layers[0])))
	require.NoError(t, err)
	layer, err := io.ReadAll(zr)
	require.NoError(t, err)
	sum := sha256.Sum256(layer)
	require.Equal(t, []string{"sha256:" + hex.EncodeToString(sum[:])}, config.RootFS.DiffIDs)
	tr := tar.NewReader(bytes.NewReader(layer))
	hdr, err := tr.Next()
	require.NoError(t, err)
	require.Equal(t, "pause", hdr.Name)
	require.EqualValues(t, 0o755, hdr.Mode)
	require.Equal(t, 0, hdr.Uid)
	got, err := io.ReadAll(tr)
	require.NoError(t, err)
	require.Equal(t, exe, got)
	_, err = tr.Next()
	require.ErrorIs(t, err, io.EOF, "the layer holds the executable only")
}

func TestImageArchiveRefusesIncompleteImages(t *testing.T) {
	t.Parallel()
	for name, img := range map[string]node.Image{
		"no tag":        {Name: "localhost/mpegflow/pause", Path: "/pause", Executable: []byte("x")},
		"port, no tag":  {Name: "localhost:5000/pause", Path: "/pause", Executable: []byte("x")},
		"relative path": {Name: "p:1", Path: "pause", Executable: []byte("x")},
		"root path":     {Name: "p:1", Path: "/", Executable: []byte("x")},
		"no executable": {Name: "p:1", Path: "/pause"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Error(t, img.WriteArchive(io.Discard))
		})
	}
}
