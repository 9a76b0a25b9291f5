package client_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestUploadDownloadRoundtrip sends a file through an asset's presigned PUT
// to the real S3 server and reads it back through the presigned GET.
func TestUploadDownloadRoundtrip(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	dir := t.TempDir()
	src := filepath.Join(dir, "source.mp4")
	data := make([]byte, 3<<20+17)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(src, data, 0o600))

	size := int64(len(data))
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "source.mp4", ContentType: "video/mp4", SizeBytes: &size})
	require.NoError(t, err)
	require.NotNil(t, a.Upload)
	assert.Equal(t, "PUT", a.Upload.Method)
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	var progress counter
	require.NoError(t, c.UploadFile(t.Context(), a.Upload.URL, a.ContentType, f, &progress))
	assert.Equal(t, size, progress.n, "progress saw every byte")

	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Download)
	dst := filepath.Join(dir, "out", "copy.mp4")
	n, err := c.Download(t.Context(), got.Download.URL, dst)
	require.NoError(t, err)
	assert.Equal(t, size, n)
	back, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, back), "downloaded bytes differ")
	leftovers, err := filepath.Glob(filepath.Join(dir, "out", ".*part"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "no temporary files left")

	// Storage checks the signature: a tampered URL is refused, and the
	// refusal names S3's code.
	u, err := url.Parse(got.Download.URL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("X-Amz-Signature", "0000000000000000000000000000000000000000000000000000000000000000")
	u.RawQuery = q.Encode()
	_, err = c.Download(t.Context(), u.String(), filepath.Join(dir, "bad.mp4"))
	var se *client.StorageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Status)
	assert.Equal(t, "SignatureDoesNotMatch", se.Code)
	assert.NoFileExists(t, filepath.Join(dir, "bad.mp4"))

	// The PUT was signed for video/mp4; another content type is refused.
	// (A small body: storage answers before reading it, and a large one
	// could see the connection reset instead.)
	small := filepath.Join(dir, "small.mp4")
	require.NoError(t, os.WriteFile(small, []byte("small"), 0o600))
	f2, err := os.Open(small)
	require.NoError(t, err)
	defer f2.Close()
	err = c.UploadFile(t.Context(), a.Upload.URL, "text/plain", f2, nil)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Status)
}

// TestUploadEmptyFile: an empty file goes through a presigned PUT of any
// size (encode outputs use those). An empty asset is refused: its upload
// URL could not bind the length.
func TestUploadEmptyFile(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	var zero int64
	_, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "empty.mp4", SizeBytes: &zero})
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 422, apiErr.Status)

	src := filepath.Join(t.TempDir(), "empty.mp4")
	require.NoError(t, os.WriteFile(src, nil, 0o600))
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	put, err := srv.Objects.PresignPut(t.Context(), "empty/empty.mp4", "video/mp4")
	require.NoError(t, err)
	require.NoError(t, c.UploadFile(t.Context(), put.URL, "video/mp4", f, nil))
	get, err := srv.Objects.PresignGet(t.Context(), "empty/empty.mp4")
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := c.Fetch(t.Context(), get.URL, &buf)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestUploadAssetSendsTheDeclaredLength: an asset's upload URL admits only
// its declared size. UploadAsset refuses a file of another size before
// sending, and storage (versitygw) refuses such a PUT when it is sent
// anyway, storing nothing; the declared size goes through.
func TestUploadAssetSendsTheDeclaredLength(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	src := filepath.Join(t.TempDir(), "clip.mp4")
	require.NoError(t, os.WriteFile(src, []byte("frames+"), 0o600))
	size := int64(len("frames"))
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "clip.mp4", ContentType: "video/mp4", SizeBytes: &size})
	require.NoError(t, err)
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()

	err = c.UploadAsset(t.Context(), a, f, nil)
	require.ErrorContains(t, err, "admits exactly 6")
	err = c.UploadFile(t.Context(), a.Upload.URL, a.ContentType, f, nil)
	var se *client.StorageError
	require.ErrorAs(t, err, &se, "storage accepted 7 bytes for 6 declared")
	assert.Equal(t, 403, se.Status)
	assert.Equal(t, "SignatureDoesNotMatch", se.Code)
	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	_, err = c.Fetch(t.Context(), got.Download.URL, io.Discard)
	require.ErrorAs(t, err, &se, "a refused upload stored an object")
	assert.Equal(t, 404, se.Status)

	require.NoError(t, os.Truncate(src, size))
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	require.NoError(t, c.UploadAsset(t.Context(), a, f, nil))
	var buf bytes.Buffer
	_, err = c.Fetch(t.Context(), got.Download.URL, &buf)
	require.NoError(t, err)
	assert.Equal(t, "frames", buf.String())
}
