package apiserver

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsNeverCarryKeys: request logs name the route, status and tenant but
// never a key or a webhook secret, whatever the request carried.
func TestLogsNeverCarryKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{Guard: testGuard()}, f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), log)
	require.NoError(t, err)
	key := f.keys[auth.Owner]
	send := func(method, target, body string, hdr map[string]string) *http.Response {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		return resp
	}
	auth := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	send("GET", "/v1/jobs", "", auth).Body.Close()
	send("GET", "/ws?api_key="+key, "", nil).Body.Close()
	send("GET", "/v1/jobs", "", map[string]string{"Authorization": "Bearer " + key + "x"}).Body.Close()
	resp := send("POST", "/v1/webhooks", `{"url":"https://hooks.example.com/x","events":["job.completed"]}`, auth)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var created apiv1.WebhookCreated
	require.NoError(t, jsonDecode(resp, &created))
	send("POST", "/v1/api-keys", `{"name":"second"}`, auth).Body.Close()

	logs := buf.String()
	require.Contains(t, logs, `"route":"/v1/jobs"`, "requests are logged")
	assert.NotContains(t, logs, key)
	assert.NotContains(t, logs, key[len(key)-32:], "not even the secret part")
	assert.NotContains(t, logs, created.Secret)
	assert.NotContains(t, logs, "mfk_", "no key material of any kind")
}
