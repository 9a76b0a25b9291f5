package objstore_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// putPart sends body to a presigned part URL and returns the status and
// the ETag storage answered.
func putPart(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "PUT", url, bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("ETag")
}

// TestMultipartPresignedParts runs against versitygw, which checks
// signatures: parts go up through presigned URLs bound to their length,
// storage lists them with their ETags, and completing joins them into one
// object; an aborted upload is gone.
func TestMultipartPresignedParts(t *testing.T) {
	t.Parallel()
	st, err := objstore.New(t.Context(), testenv.S3(t))
	require.NoError(t, err)
	ctx := t.Context()
	const key = "orgs/x/assets/y/source"
	data := make([]byte, objstore.MinPartSize+1234)
	_, _ = rand.Read(data)
	sizes := []int64{objstore.MinPartSize, 1234}

	id, err := st.CreateMultipart(ctx, key, "video/mp4")
	require.NoError(t, err)
	require.NotEmpty(t, id)

	u, err := st.PresignUploadPart(ctx, key, id, 2, sizes[1])
	require.NoError(t, err)
	code, _ := putPart(t, u.URL, data[sizes[0]:len(data)-1])
	assert.Equal(t, http.StatusForbidden, code, "a part shorter than signed")
	code, _ = putPart(t, u.URL, append(bytes.Clone(data[sizes[0]:]), 'x'))
	assert.Equal(t, http.StatusForbidden, code, "a part longer than signed")
	parts, err := st.AllParts(ctx, key, id)
	require.NoError(t, err)
	assert.Empty(t, parts, "refused parts are not stored")

	var etags []string
	for i, off := range []int64{0, sizes[0]} {
		u, err := st.PresignUploadPart(ctx, key, id, int32(i+1), sizes[i])
		require.NoError(t, err)
		code, etag := putPart(t, u.URL, data[off:off+sizes[i]])
		require.Equal(t, http.StatusOK, code)
		require.NotEmpty(t, etag)
		etags = append(etags, etag)
	}
	parts, err = st.AllParts(ctx, key, id)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	for i, p := range parts {
		assert.Equal(t, int32(i+1), p.Number)
		assert.Equal(t, sizes[i], p.Size)
		assert.True(t, objstore.SameETag(etags[i], p.ETag), "%s vs %s", etags[i], p.ETag)
	}
	page, more, err := st.ListParts(ctx, key, id, 1, 1)
	require.NoError(t, err)
	assert.False(t, more)
	require.Len(t, page, 1)
	assert.Equal(t, int32(2), page[0].Number, "listing resumes after a part number")

	require.NoError(t, st.CompleteMultipart(ctx, key, id, parts))
	size, err := st.Size(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), size)
	get, err := st.PresignGet(ctx, key)
	require.NoError(t, err)
	code, body := do(t, "GET", get.URL, "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.True(t, bytes.Equal(data, body), "the object is the parts joined")
	require.ErrorIs(t, st.AbortMultipart(ctx, key, id), objstore.ErrNoUpload, "a completed upload is gone")

	id2, err := st.CreateMultipart(ctx, "orgs/x/assets/z/source", "video/mp4")
	require.NoError(t, err)
	require.NoError(t, st.AbortMultipart(ctx, "orgs/x/assets/z/source", id2))
	_, err = st.AllParts(ctx, "orgs/x/assets/z/source", id2)
	require.ErrorIs(t, err, objstore.ErrNoUpload)
	require.ErrorIs(t, st.AbortMultipart(ctx, "orgs/x/assets/z/source", id2), objstore.ErrNoUpload)
}
