package encoder

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/netguard"
)

// TestInputProxy: the loopback proxy a chunk reads a customer's URL
// through serves only its own path, GET and HEAD, forwards ranges, and
// still refuses what the SSRF guard refuses.
func TestInputProxy(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("X-Secret"), "only Range is forwarded")
		http.ServeContent(w, r, "in.mp4", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(origin.Close)
	allow, err := netguard.ParseAllow("127.0.0.1/32")
	require.NoError(t, err)
	worker := func(guard *netguard.Guard) *Worker {
		cfg := Config{Guard: guard}
		cfg.defaults()
		return &Worker{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	}
	allowed := worker(netguard.New(netguard.Config{AllowHTTP: true, Allow: allow}))
	refused := worker(netguard.New(netguard.Config{AllowHTTP: true}))

	get := func(w *Worker, method, path, rng string) (int, string, http.Header) {
		url, stop, err := w.serveInput(context.Background(), w.log, origin.URL+"/in.mp4")
		require.NoError(t, err)
		defer stop()
		if path != "" {
			url = url[:strings.Index(url[len("http://"):], "/")+len("http://")] + path
		}
		req, err := http.NewRequest(method, url, nil)
		require.NoError(t, err)
		req.Header.Set("X-Secret", "not for the origin")
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body), resp.Header
	}

	code, body, h := get(allowed, http.MethodGet, "", "bytes=10-19")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, "0123456789", body)
	assert.Equal(t, "bytes 10-19/10000", h.Get("Content-Range"))
	code, body, _ = get(allowed, http.MethodGet, "", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Len(t, body, len(data))
	code, _, h = get(allowed, http.MethodHead, "", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "10000", h.Get("Content-Length"))

	code, _, _ = get(allowed, http.MethodPost, "", "")
	assert.Equal(t, http.StatusNotFound, code, "only GET and HEAD")
	code, _, _ = get(allowed, http.MethodGet, "/input", "")
	assert.Equal(t, http.StatusNotFound, code, "only the unguessable path")

	code, body, _ = get(refused, http.MethodGet, "", "bytes=0-9")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Contains(t, body, "is a loopback address", "the guard still decides where the proxy connects")

	_, _, err = allowed.serveInput(context.Background(), allowed.log, "file:///etc/passwd")
	assert.ErrorContains(t, err, `scheme "file" is not accepted`)
}
