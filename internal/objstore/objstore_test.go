package objstore_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

func do(t *testing.T, method, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestPresignedURLs runs against versitygw, which checks SigV4 signatures
// like S3: a presigned URL works for its object and method until it expires,
// and a tampered one never does.
func TestPresignedURLs(t *testing.T) {
	t.Parallel()
	cfg := testenv.S3(t)
	st, err := objstore.New(cfg)
	require.NoError(t, err)
	ctx := t.Context()

	put, err := st.PresignPut(ctx, "a/b/video.mp4", "video/mp4")
	require.NoError(t, err)
	code, body := do(t, "PUT", put.URL, "video/mp4", []byte("frames"))
	require.Equal(t, http.StatusOK, code, "%s", body)
	ok, err := st.Exists(ctx, "a/b/video.mp4")
	require.NoError(t, err)
	assert.True(t, ok)

	get, err := st.PresignGet(ctx, "a/b/video.mp4")
	require.NoError(t, err)
	code, body = do(t, "GET", get.URL, "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "frames", string(body))

	tampered := []struct{ name, method, url, contentType string }{
		{"other object", "GET", strings.Replace(get.URL, "video.mp4", "other.mp4", 1), ""},
		{"signature changed", "GET", flipLast(get.URL), ""},
		{"PUT with a GET URL", "PUT", get.URL, "video/mp4"},
		{"PUT with another content type", "PUT", put.URL, "text/html"},
	}
	for _, tc := range tampered {
		code, body := do(t, tc.method, tc.url, tc.contentType, []byte("evil"))
		assert.Equal(t, http.StatusForbidden, code, "%s: %s", tc.name, body)
	}
	code, body = do(t, "GET", get.URL, "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "frames", string(body), "no tampered request changed the object")

	// An expired URL is refused.
	short := cfg
	short.PresignTTL = time.Second
	sst, err := objstore.New(short)
	require.NoError(t, err)
	expiring, err := sst.PresignGet(ctx, "a/b/video.mp4")
	require.NoError(t, err)
	code, _ = do(t, "GET", expiring.URL, "", nil)
	require.Equal(t, http.StatusOK, code, "valid before it expires")
	deadline := time.Now().Add(10 * time.Second)
	for code == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond) // waiting for wall-clock expiry on the server is the point
		code, _ = do(t, "GET", expiring.URL, "", nil)
	}
	assert.Equal(t, http.StatusForbidden, code, "refused once expired")

	require.NoError(t, st.Delete(ctx, "a/b/video.mp4"))
	require.NoError(t, st.Delete(ctx, "a/b/video.mp4"), "deleting a missing object succeeds")
	ok, err = st.Exists(ctx, "a/b/video.mp4")
	require.NoError(t, err)
	assert.False(t, ok)
}

// flipLast changes the last hex digit of a presigned URL (its signature).
func flipLast(u string) string {
	last := u[len(u)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return u[:len(u)-1] + string(repl)
}
