package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mpegflow/mpegflow/webhook"
)

// TestHandler: a real HTTP server built on Handler answers 401 to bad or
// stale signatures, 500 when the application fails (so MpegFlow retries),
// then handles the retry, and acknowledges a duplicate without handling it.
func TestHandler(t *testing.T) {
	t.Parallel()
	const secret = "whsec_handler"
	now := time.Unix(1_800_000_000, 0)
	var handled []string
	fail := true
	h := &webhook.Handler{Secret: secret, Now: func() time.Time { return now }, OnEvent: func(_ context.Context, e webhook.Event) error {
		if fail {
			fail = false
			return errors.New("database down")
		}
		handled = append(handled, e.ID)
		return nil
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body := []byte(`{"id":"evt-1","type":"job.completed","org_id":"o","at":"2027-01-15T08:00:00Z"}`)
	post := func(method, sig string, b []byte) int {
		req, _ := http.NewRequest(method, srv.URL, bytes.NewReader(b))
		if sig != "" {
			req.Header.Set(webhook.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		name   string
		method string
		sig    string
		body   []byte
		want   int
	}{
		{"unsigned", http.MethodPost, "", body, http.StatusUnauthorized},
		{"signed an hour ago", http.MethodPost, webhook.Sign(secret, now.Add(-time.Hour), body), body, http.StatusUnauthorized},
		{"wrong secret", http.MethodPost, webhook.Sign("whsec_other", now, body), body, http.StatusUnauthorized},
		{"GET", http.MethodGet, webhook.Sign(secret, now, body), body, http.StatusMethodNotAllowed},
		{"not an event", http.MethodPost, webhook.Sign(secret, now, []byte(`[]`)), []byte(`[]`), http.StatusBadRequest},
		{"application fails", http.MethodPost, webhook.Sign(secret, now, body), body, http.StatusInternalServerError},
		{"retry is handled", http.MethodPost, webhook.Sign(secret, now.Add(time.Second), body), body, http.StatusOK},
		{"duplicate acknowledged", http.MethodPost, webhook.Sign(secret, now.Add(2*time.Second), body), body, http.StatusOK},
	}
	for _, s := range steps {
		assert.Equal(t, s.want, post(s.method, s.sig, s.body), s.name)
	}
	assert.Equal(t, []string{"evt-1"}, handled, "handled exactly once")
}
