package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

// encryptedJob submits an encrypted job for org A and stores its content
// key as the coordinator does at the first claim.
func (f *fixture) encryptedJob(t *testing.T) (apiv1.Job, contentkey.Key) {
	t.Helper()
	spec := json.RawMessage(`{"packaging":"hls","renditions":[{"codec":"h264","height":360,"bitrate_kbps":500}],"encryption":{"method":"aes-128"}}`)
	job := f.submitJob(t, f.keys[auth.Owner], map[string]any{"input": map[string]any{"url": "https://media.example.com/in.mp4"}, "spec": spec})
	k, err := contentkey.New()
	require.NoError(t, err)
	sealer, err := contentkey.NewSealer(fixtureSecret)
	require.NoError(t, err)
	id := uuid.MustParse(job.ID)
	sealed, err := sealer.Seal(id, k.Value)
	require.NoError(t, err)
	_, err = f.store.EnsureContentKey(t.Context(), store.ContentKey{JobID: id, OrgID: f.orgA.ID, KID: k.ID, SealedKey: sealed})
	require.NoError(t, err)
	return job, k
}

func TestJobContentKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, k := f.encryptedJob(t)
	clear := f.submitJob(t, f.keys[auth.Owner], urlJob())

	for _, role := range []auth.Role{auth.Viewer, auth.Owner} {
		r := f.do(t, "GET", "/v1/jobs/"+job.ID+"/key", f.keys[role], nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", role, r.Body)
		assert.Equal(t, k.Value, r.Body, "the raw key")
		assert.Equal(t, "application/octet-stream", r.Header.Get("Content-Type"))
		assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	}
	tests := map[string]struct {
		path, key string
		status    int
	}{
		"another organization": {"/v1/jobs/" + job.ID + "/key", f.keyB, http.StatusNotFound},
		"a clear job":          {"/v1/jobs/" + clear.ID + "/key", f.keys[auth.Owner], http.StatusNotFound},
		"an unknown job":       {"/v1/jobs/" + uuid.NewString() + "/key", f.keys[auth.Owner], http.StatusNotFound},
		"no API key":           {"/v1/jobs/" + job.ID + "/key", "", http.StatusUnauthorized},
		"not an id":            {"/v1/jobs/x/key", f.keys[auth.Owner], http.StatusNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := f.do(t, "GET", tt.path, tt.key, nil)
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			require.NotContains(t, string(r.Body), base64.RawURLEncoding.EncodeToString(k.Value))
			require.NotEqual(t, k.Value, r.Body)
		})
	}
	// The job itself, its events and its listing never carry the key.
	for _, path := range []string{"/v1/jobs/" + job.ID, "/v1/jobs/" + job.ID + "/events", "/v1/jobs"} {
		r := f.do(t, "GET", path, f.keys[auth.Owner], nil)
		require.Equal(t, http.StatusOK, r.Status)
		require.NotContains(t, string(r.Body), base64.StdEncoding.EncodeToString(k.Value), path)
	}
}

func TestClearKeyLicense(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, k := f.encryptedJob(t)
	kid := base64.RawURLEncoding.EncodeToString(k.ID[:])
	path := "/v1/jobs/" + job.ID + "/clearkey"

	var lic apiv1.ClearKeyLicense
	f.mustDo(t, http.StatusOK, "POST", path, f.keys[auth.Viewer], map[string]any{"kids": []string{kid}, "type": "temporary"}, &lic)
	require.Equal(t, apiv1.ClearKeyLicense{Type: "temporary", Keys: []apiv1.ClearKeyJWK{
		{Kty: "oct", Kid: kid, K: base64.RawURLEncoding.EncodeToString(k.Value)},
	}}, lic)

	tests := map[string]struct {
		key    string
		body   any
		status int
		fields []string
	}{
		"another organization":  {f.keyB, map[string]any{"kids": []string{kid}}, http.StatusNotFound, nil},
		"another key id":        {f.keys[auth.Owner], map[string]any{"kids": []string{base64.RawURLEncoding.EncodeToString(make([]byte, 16))}}, http.StatusNotFound, nil},
		"no key ids":            {f.keys[auth.Owner], map[string]any{"kids": []string{}}, http.StatusUnprocessableEntity, []string{"kids"}},
		"a key id not 16 bytes": {f.keys[auth.Owner], map[string]any{"kids": []string{kid, "AAAA"}}, http.StatusUnprocessableEntity, []string{"kids[1]"}},
		"padded base64":         {f.keys[auth.Owner], map[string]any{"kids": []string{kid + "=="}}, http.StatusUnprocessableEntity, []string{"kids[0]"}},
		"persistent session":    {f.keys[auth.Owner], map[string]any{"kids": []string{kid}, "type": "persistent-license"}, http.StatusUnprocessableEntity, []string{"type"}},
		"too many key ids":      {f.keys[auth.Owner], map[string]any{"kids": slices.Repeat([]string{kid}, apiv1.MaxClearKeyRequest+1)}, http.StatusUnprocessableEntity, []string{"kids"}},
		"key ids not a list":    {f.keys[auth.Owner], map[string]any{"kids": kid}, http.StatusUnprocessableEntity, []string{"kids"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := f.do(t, "POST", path, tt.key, tt.body)
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			require.NotContains(t, string(r.Body), base64.RawURLEncoding.EncodeToString(k.Value))
			if tt.fields != nil {
				require.Equal(t, tt.fields, r.fields(t))
			}
		})
	}
	r := f.raw(t, "POST", path, f.keys[auth.Owner], []byte(`{"kids":["`+kid+`"]}`), map[string]string{"Content-Type": "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, r.Status)
}

// A server without the server secret cannot open keys: it says so (503)
// instead of failing obscurely.
func TestContentKeysNeedTheServerSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, _ := f.encryptedJob(t)
	srv, err := New(Config{}, f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f.srv = srv
	r := f.do(t, "GET", "/v1/jobs/"+job.ID+"/key", f.keys[auth.Owner], nil)
	require.Equal(t, http.StatusServiceUnavailable, r.Status)
	require.Equal(t, "urn:mpegflow:problem:content-keys-unavailable", r.problem(t).Type)

	// Sealed under another secret, the key does not open: 500, no key.
	other, err := contentkey.NewSealer([]byte(strings.Repeat("x", 32)))
	require.NoError(t, err)
	srv, err = New(Config{ContentKeys: other}, f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f.srv = srv
	r = f.do(t, "GET", "/v1/jobs/"+job.ID+"/key", f.keys[auth.Owner], nil)
	require.Equal(t, http.StatusInternalServerError, r.Status)
}
