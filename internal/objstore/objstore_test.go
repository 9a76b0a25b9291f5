package objstore_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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
	st, err := objstore.New(t.Context(), cfg)
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
	sst, err := objstore.New(t.Context(), short)
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

// TestPresignedPutBindsTheLength runs against versitygw: a URL from
// PresignPutSized stores exactly the declared number of bytes. A PUT of
// more or fewer bytes, a chunked PUT (no length) and a body that ends
// before its Content-Length are refused and leave no object; a body longer
// than its Content-Length stores only the declared bytes.
func TestPresignedPutBindsTheLength(t *testing.T) {
	t.Parallel()
	cfg := testenv.S3(t)
	st, err := objstore.New(t.Context(), cfg)
	require.NoError(t, err)
	ctx := t.Context()
	const declared = "0123456789"
	_, err = st.PresignPutSized(ctx, "sized/empty", "video/mp4", 0)
	require.Error(t, err, "a zero Content-Length is never signed, so an empty upload cannot be bound")

	presign := func(t *testing.T, key string) string {
		t.Helper()
		put, err := st.PresignPutSized(ctx, key, "video/mp4", int64(len(declared)))
		require.NoError(t, err)
		return put.URL
	}
	stored := func(t *testing.T, key string) (string, bool) {
		t.Helper()
		ok, err := st.Exists(ctx, key)
		require.NoError(t, err)
		if !ok {
			return "", false
		}
		get, err := st.PresignGet(ctx, key)
		require.NoError(t, err)
		code, body := do(t, "GET", get.URL, "", nil)
		require.Equal(t, http.StatusOK, code)
		return string(body), true
	}

	t.Run("declared length", func(t *testing.T) {
		t.Parallel()
		code, body := do(t, "PUT", presign(t, "sized/exact"), "video/mp4", []byte(declared))
		require.Equal(t, http.StatusOK, code, "%s", body)
		got, ok := stored(t, "sized/exact")
		require.True(t, ok)
		assert.Equal(t, declared, got)
	})
	for name, body := range map[string]string{
		"more bytes":  declared + "overflowing",
		"fewer bytes": declared[:4],
		"no bytes":    "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := "sized/" + strings.ReplaceAll(name, " ", "-")
			code, resp := do(t, "PUT", presign(t, key), "video/mp4", []byte(body))
			assert.Equal(t, http.StatusForbidden, code, "%s", resp)
			assert.Contains(t, string(resp), "SignatureDoesNotMatch")
			_, ok := stored(t, key)
			assert.False(t, ok, "a refused upload stored an object")
		})
	}
	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		key := "sized/chunked"
		req, err := http.NewRequestWithContext(ctx, "PUT", presign(t, key), io.MultiReader(strings.NewReader(declared), strings.NewReader("more")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "video/mp4")
		req.ContentLength = -1 // unknown: Transfer-Encoding chunked, no Content-Length
		// The server may refuse before the body is sent and close the
		// connection (the client then sees a broken pipe): refused either way.
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		}
		_, ok := stored(t, key)
		assert.False(t, ok, "a chunked upload stored an object")
	})
	t.Run("body ends before its content length", func(t *testing.T) {
		t.Parallel()
		key := "sized/short-body"
		status := rawPut(t, presign(t, key), len(declared), declared[:4])
		assert.NotEqual(t, "200", status, "a truncated body was accepted")
		_, ok := stored(t, key)
		assert.False(t, ok, "a truncated body was stored")
	})
	t.Run("body longer than its content length", func(t *testing.T) {
		t.Parallel()
		key := "sized/long-body"
		status := rawPut(t, presign(t, key), len(declared), declared+"smuggled bytes")
		assert.Equal(t, "200", status)
		got, ok := stored(t, key)
		require.True(t, ok)
		assert.Equal(t, declared, got, "only the signed length is stored")
	})
}

// rawPut sends a PUT whose Content-Length header says length while body is
// what goes on the wire, closes its side and returns the response's status
// code ("" when storage answers nothing).
func rawPut(t *testing.T, rawURL string, length int, body string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		u.RequestURI(), u.Host, length, body)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "" // the server hung up: nothing was accepted
	}
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// TestOpenFromAVersion: OpenFrom says the ETag of what it opened; with that
// ETag it reads the same object from any offset, and once the object is
// overwritten the old ETag is ErrChanged (versitygw, as S3, answers 412 to
// If-Match). An offset at the end reads nothing.
func TestOpenFromAVersion(t *testing.T) {
	t.Parallel()
	st, err := objstore.New(t.Context(), testenv.S3(t))
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, st.Put(ctx, "m/manifest.jsonl", strings.NewReader("line one\nline two\n")))
	read := func(offset int64, etag string) (string, string, error) {
		body, got, err := st.OpenFrom(ctx, "m/manifest.jsonl", offset, etag)
		if err != nil {
			return "", "", err
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		require.NoError(t, err)
		return string(b), got, nil
	}
	all, etag, err := read(0, "")
	require.NoError(t, err)
	assert.Equal(t, "line one\nline two\n", all)
	require.NotEmpty(t, etag)
	rest, again, err := read(9, etag)
	require.NoError(t, err)
	assert.Equal(t, "line two\n", rest)
	assert.Equal(t, etag, again)
	end, _, err := read(18, etag)
	require.NoError(t, err)
	assert.Empty(t, end)

	require.NoError(t, st.Put(ctx, "m/manifest.jsonl", strings.NewReader("other lines\n")))
	_, _, err = read(0, etag)
	require.ErrorIs(t, err, objstore.ErrChanged)
	_, _, err = read(9, etag)
	require.ErrorIs(t, err, objstore.ErrChanged)
	now, _, err := read(0, "")
	require.NoError(t, err)
	assert.Equal(t, "other lines\n", now)
	_, _, err = st.OpenFrom(ctx, "m/none", 0, "")
	require.ErrorIs(t, err, objstore.ErrNoObject)
}
