package apiserver

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestAssetPresignedRoundTrip uploads through the presigned PUT URL to a
// real S3 server that checks signatures, downloads through the presigned GET
// URL, and deletes the object with the asset.
func TestAssetPresignedRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", key, map[string]any{"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": 11}, &a)
	require.NotNil(t, a.Upload)
	assert.Equal(t, "PUT", a.Upload.Method)

	payload := []byte("hello video")
	put, err := http.NewRequestWithContext(t.Context(), "PUT", a.Upload.URL, bytes.NewReader(payload))
	require.NoError(t, err)
	put.Header.Set("Content-Type", "video/mp4")
	resp, err := http.DefaultClient.Do(put)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "presigned PUT accepted")

	// A tampered signature is refused: the server really checks.
	bad, err := http.NewRequestWithContext(t.Context(), "PUT", a.Upload.URL+"x", bytes.NewReader(payload))
	require.NoError(t, err)
	bad.Header.Set("Content-Type", "video/mp4")
	resp, err = http.DefaultClient.Do(bad)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "tampered URL refused")

	var got apiv1.Asset
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+a.ID, f.keys[auth.Viewer], nil, &got)
	require.NotNil(t, got.Download)
	resp, err = http.Get(got.Download.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, payload, body)

	exists, err := f.objects.Exists(t.Context(), "orgs/"+f.orgA.ID.String()+"/assets/"+a.ID+"/source")
	require.NoError(t, err)
	require.True(t, exists, "the object key carries no user-chosen path")

	// An asset that an unfinished job reads cannot be deleted.
	job := f.submitJob(t, key, map[string]any{"input": map[string]any{"asset_id": a.ID}, "workflow": "mp4-720p"})
	r := f.do(t, "DELETE", "/v1/assets/"+a.ID, key, nil)
	assert.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	f.mustDo(t, http.StatusOK, "POST", "/v1/jobs/"+job.ID+"/cancel", key, nil, nil)

	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/assets/"+a.ID, key, nil, nil)
	exists, err = f.objects.Exists(t.Context(), "orgs/"+f.orgA.ID.String()+"/assets/"+a.ID+"/source")
	require.NoError(t, err)
	assert.False(t, exists, "the object is gone with the asset")
	r = f.do(t, "GET", "/v1/assets/"+a.ID, key, nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
}

// TestAssetUploadIsBoundToItsDeclaredSize: creating an asset needs
// size_bytes, and its presigned PUT stores exactly that many bytes; real
// S3 (versitygw) refuses more or fewer and stores nothing.
func TestAssetUploadIsBoundToItsDeclaredSize(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	r := f.do(t, "POST", "/v1/assets", key, map[string]any{"filename": "clip.mp4", "content_type": "video/mp4"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Contains(t, string(r.Body), `"size_bytes"`)

	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", key, map[string]any{"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": 11}, &a)
	require.NotNil(t, a.Upload)
	objectKey := "orgs/" + f.orgA.ID.String() + "/assets/" + a.ID + "/source"
	put := func(body string) int {
		req, err := http.NewRequestWithContext(t.Context(), "PUT", a.Upload.URL, bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "video/mp4")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, body := range []string{"hello video!", "hello vide", strings.Repeat("x", 100)} {
		assert.Equal(t, http.StatusForbidden, put(body), "a PUT of %d bytes for 11 declared", len(body))
		exists, err := f.objects.Exists(t.Context(), objectKey)
		require.NoError(t, err)
		require.False(t, exists, "a refused PUT of %d bytes stored an object", len(body))
	}
	require.Equal(t, http.StatusOK, put("hello video"), "the declared 11 bytes")
	exists, err := f.objects.Exists(t.Context(), objectKey)
	require.NoError(t, err)
	assert.True(t, exists)
}

// TestAssetFilenames: a file name is one plain path element; names that
// climb directories, name one, or hide characters are refused with 422
// naming filename, and nothing is created.
func TestAssetFilenames(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	for _, name := range []string{"..", ".", "...", `..\..\x`, `C:\temp\x.mp4`, "a/b.mp4", "clip\u202egnp.exe",
		"clip\u2066.mp4", "clip\u200f.mp4", "clip\u061c.mp4", "a\u200bb.mp4", " clip.mp4", "clip.mp4 ", "clip\u0085.mp4"} {
		t.Run(name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/assets", key, map[string]any{"filename": name, "size_bytes": 1})
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%q: %s", name, r.Body)
			assert.Equal(t, []string{"filename"}, r.fields(t))
		})
	}
	as, err := f.store.ListAssets(t.Context(), f.orgA.ID, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, as)
	for _, name := range []string{"clip.mp4", "日本語.mov", ".hidden", "a..b.mp4", "emoji 🎬.mp4"} {
		var a apiv1.Asset
		f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", key, map[string]any{"filename": name, "size_bytes": 1}, &a)
		assert.Equal(t, name, a.Filename, "stored as sent")
	}
}
