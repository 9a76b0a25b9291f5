package client_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/objstore"
)

// smallParts: files above 6 MiB go up in parts of 5 MiB.
var smallParts = apiserver.UploadConfig{MultipartThreshold: 6 << 20, PartSize: 5 << 20}

// meter counts bytes sent (Write) and bytes credited as already stored
// (Add64, as a progress bar has). With a mark, it fails every write once
// sent passes it: the upload's body breaks off there, as when a laptop
// loses its network.
type meter struct {
	mu           sync.Mutex
	sent, stored int64
	mark         int64
}

func (m *meter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mark > 0 && m.sent+int64(len(p)) > m.mark {
		return 0, errors.New("network lost")
	}
	m.sent += int64(len(p))
	return len(p), nil
}

func (m *meter) Add64(n int64) error { m.mu.Lock(); m.stored += n; m.mu.Unlock(); return nil }

// bigFile writes n random bytes to big.mov in a temporary directory and
// opens it (closed when the test ends).
func bigFile(t *testing.T, n int) ([]byte, *os.File) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	src := filepath.Join(t.TempDir(), "big.mov")
	require.NoError(t, os.WriteFile(src, data, 0o600))
	f, err := os.Open(src)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return data, f
}

// TestMultipartUploadResumes uploads a file of three parts to the real S3
// server, one part at a time, and breaks it off when the second part
// starts (every retry of that part breaks too): the first part is stored, the upload stays open. ResumeUpload
// then asks the server what storage holds, sends only the other parts and
// completes; the asset downloads as the file.
func TestMultipartUploadResumes(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true, Uploads: smallParts})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{PartConcurrency: 1})
	data, f := bigFile(t, 2*(5<<20)+4321)
	size := int64(len(data))
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", ContentType: "video/quicktime", SizeBytes: &size})
	require.NoError(t, err)
	require.NotNil(t, a.Multipart)
	assert.Nil(t, a.Upload)
	assert.Equal(t, 3, a.Multipart.PartCount)

	first := &meter{mark: 5 << 20}
	err = c.UploadAsset(t.Context(), a, f, first)
	require.ErrorContains(t, err, "part 2 of 3")
	stored, err := c.UploadedParts(t.Context(), a.ID)
	require.NoError(t, err)
	require.Len(t, stored, 1, "the first part is stored")
	assert.Equal(t, 1, stored[0].PartNumber)

	again := &meter{}
	done, err := c.ResumeUpload(t.Context(), a.ID, f, again)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", done.UploadStatus)
	assert.Equal(t, int64(5<<20), again.stored, "the stored part counts as done")
	assert.Equal(t, size-5<<20, again.sent, "only the missing parts were sent")

	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = c.Fetch(t.Context(), got.Download.URL, &buf)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, buf.Bytes()), "the asset is the file")

	// Resuming an upload that completed (its answer lost) is done at once;
	// with a file of another size it is refused.
	finished, err := c.ResumeUpload(t.Context(), a.ID, f, nil)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", finished.UploadStatus)
	other, err := os.Create(filepath.Join(t.TempDir(), "other.mov"))
	require.NoError(t, err)
	defer other.Close()
	_, err = c.ResumeUpload(t.Context(), a.ID, other, nil)
	require.ErrorContains(t, err, "no open multipart upload")
}

// TestResumeAfterAnUnrecordedJoin: storage joined every part (a completion
// whose answer, or whose database write, was lost), and the asset is still
// uploading. ResumeUpload sends nothing: listing the parts makes the server
// record the join, and the client reads the asset, uploaded, with the file
// as its content.
func TestResumeAfterAnUnrecordedJoin(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true, Uploads: smallParts})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	data, f := bigFile(t, 5<<20+2<<20+77)
	size := int64(len(data))
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", ContentType: "video/quicktime", SizeBytes: &size})
	require.NoError(t, err)
	require.NotNil(t, a.Multipart)
	require.Len(t, a.Multipart.Parts, 2)
	row, err := srv.Store.GetAsset(t.Context(), srv.OrgID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	var parts []objstore.Part
	for i, p := range a.Multipart.Parts {
		body := data[i*(5<<20) : min((i+1)*(5<<20), len(data))]
		req, err := http.NewRequestWithContext(t.Context(), p.Method, p.URL, bytes.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		parts = append(parts, objstore.Part{Number: int32(p.PartNumber), ETag: resp.Header.Get("ETag")})
	}
	require.NoError(t, srv.Objects.CompleteMultipart(t.Context(), row.ObjectKey, *row.UploadID, parts))

	m := &meter{}
	done, err := c.ResumeUpload(t.Context(), a.ID, f, m)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", done.UploadStatus)
	assert.Zero(t, m.sent, "nothing sent again")
	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", got.UploadStatus)
	var buf bytes.Buffer
	_, err = c.Fetch(t.Context(), got.Download.URL, &buf)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, buf.Bytes()), "the asset is the file")
}

// TestMultipartUploadInOneGo: UploadAsset sends every part (several at
// once) and completes; an aborted upload cannot be resumed.
func TestMultipartUploadInOneGo(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true, Uploads: smallParts})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	data := make([]byte, 3*(5<<20)+1)
	_, _ = rand.Read(data)
	src := filepath.Join(t.TempDir(), "big.mov")
	require.NoError(t, os.WriteFile(src, data, 0o600))
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	size := int64(len(data))
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", SizeBytes: &size})
	require.NoError(t, err)
	m := &meter{}
	require.NoError(t, c.UploadAsset(t.Context(), a, f, m))
	assert.Equal(t, size, m.sent)
	got, err := c.GetAsset(t.Context(), a.ID)
	require.NoError(t, err)
	assert.Equal(t, "uploaded", got.UploadStatus)

	b, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "big.mov", SizeBytes: &size})
	require.NoError(t, err)
	aborted, err := c.AbortUpload(t.Context(), b.ID)
	require.NoError(t, err)
	assert.Equal(t, "aborted", aborted.UploadStatus)
	_, err = c.ResumeUpload(t.Context(), b.ID, f, nil)
	require.ErrorContains(t, err, "no open multipart upload")
}
