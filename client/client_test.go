package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

func TestNewRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ url, key, want string }{
		"no scheme":   {"localhost:8080", "k", "must be an absolute http:// or https:// URL"},
		"ftp":         {"ftp://example.com", "k", "must be an absolute http:// or https:// URL"},
		"credentials": {"http://u:p@example.com", "k", "no credentials"},
		"no key":      {"http://example.com", " ", "no API key"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := client.New(tc.url, tc.key, client.Config{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	c, err := client.New("http://example.com/base/", "k", client.Config{})
	require.NoError(t, err)
	assert.Equal(t, "http://example.com/base", c.Server())
}

// TestErrorsAreOneReadableLine drives the real API into each refusal and
// checks the typed error and its one-line message.
func TestErrorsAreOneReadableLine(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	owner := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	viewer := newClient(t, srv.URL, srv.ViewerKey, client.Config{})
	unknownKey := newClient(t, srv.URL, "mfk_not_a_key_this_server_issued", client.Config{})
	done := urlJob(t, owner)
	_, err := owner.CancelJob(t.Context(), done.ID)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		call   func() error
		status int
		kind   string
		fields []client.FieldError
		line   string // the whole message, or a prefix when it ends in "…"
	}{
		"unknown built-in workflow": {
			call: func() error {
				_, err := owner.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "https://x.example/a.mp4"}, Workflow: "hls-ladders"})
				return err
			},
			status: 422, kind: "validation",
			fields: []client.FieldError{{Field: "workflow", Detail: "unknown built-in workflow; want one of cmaf-ladder, dash-ladder, hls-ladder, mp4-720p, thumbnails"}},
			line:   "422 validation: workflow: unknown built-in workflow; want one of cmaf-ladder, dash-ladder, hls-ladder, mp4-720p, thumbnails",
		},
		"every offending field": {
			call: func() error {
				_, err := owner.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "ftp://x.example/a.mp4"}, Workflow: "mp4-720p", Lane: "fast", Priority: 500})
				return err
			},
			status: 422, kind: "validation",
			fields: []client.FieldError{
				{Field: "lane", Detail: "must be live or backfill"},
				{Field: "priority", Detail: "must be between -100 and 100"},
				{Field: "input.url", Detail: "must use https or s3"},
			},
			line: "422 validation: lane: must be live or backfill; priority: must be between -100 and 100; input.url: must use https or s3",
		},
		"unknown or revoked key": {
			call:   func() error { _, err := unknownKey.ListPools(t.Context()); return err },
			status: 401, kind: "unauthenticated",
			line: "401 unauthenticated: the API key is unknown or revoked; pass a valid key with --api-key or MPEGFLOW_API_KEY (`mpegflow dev` prints one for a local stack)",
		},
		"role too low": {
			call: func() error {
				_, err := viewer.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "https://x.example/a.mp4"}, Workflow: "mp4-720p"})
				return err
			},
			status: 403, kind: "forbidden", line: "403 forbidden: your role (viewer) does not allow …",
		},
		"missing job": {
			call:   func() error { _, err := owner.GetJob(t.Context(), uuid.NewString()); return err },
			status: 404, kind: "not-found", line: "404 not-found: job not found",
		},
		"finished job": {
			call:   func() error { _, err := owner.CancelJob(t.Context(), done.ID); return err },
			status: 409, kind: "conflict", line: "409 conflict: job is already cancelled",
		},
		"malformed workflow document": {
			call: func() error {
				_, err := owner.CreateWorkflow(t.Context(), json.RawMessage(`{"name": "x", "spec": {}, "extra": 1}`))
				return err
			},
			status: 422, kind: "validation", line: "422 validation: extra: unknown field; allowed fields here: description, name, spec",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.call()
			var e *client.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.status, e.Status)
			assert.Equal(t, tc.kind, e.Kind())
			assert.Equal(t, tc.status, client.StatusOf(err))
			if tc.fields != nil {
				assert.Empty(t, cmp.Diff(tc.fields, e.Fields))
			}
			if prefix, ok := strings.CutSuffix(tc.line, "…"); ok {
				assert.True(t, strings.HasPrefix(err.Error(), prefix), err.Error())
			} else {
				assert.Equal(t, tc.line, err.Error())
			}
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	url := apiservertest.ClosedURL(t)
	c := newClient(t, url, "mfk_x", client.Config{})
	_, err := c.ListJobs(t.Context(), client.JobFilter{}, "")
	var ue *client.UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, "MpegFlow server unreachable at "+url+": connection refused; start one with `mpegflow dev`, or point --server or MPEGFLOW_SERVER at a running server", err.Error())
	assert.Zero(t, client.StatusOf(err))

	// A watch meets the same error, whether it streams or polls.
	err = c.WatchEvents(t.Context(), []string{uuid.NewString()}, func(client.Event) error { return nil })
	require.ErrorAs(t, err, &ue)
}

// TestErrorFromAProxy: an answer that is no problem document keeps its
// status and the first line of its body.
func TestErrorFromAProxy(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>upstream connect error\n<body>…</body></html>")
	}))
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, "mfk_x", client.Config{})
	_, err := c.GetPool(t.Context(), "default")
	require.Error(t, err)
	assert.Equal(t, "502 bad gateway: <html>upstream connect error", err.Error())
	assert.Equal(t, http.StatusBadGateway, client.StatusOf(err))
}

// TestTypesMatchTheServer decodes the server's answers strictly into the
// client's types, so a field the server adds or renames fails here first.
func TestTypesMatchTheServer(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	j := urlJob(t, c)
	size := int64(3)
	a, err := c.CreateAsset(t.Context(), client.AssetRequest{Filename: "a.mp4", ContentType: "video/mp4", SizeBytes: &size})
	require.NoError(t, err)
	w, err := c.CreateWorkflow(t.Context(), builtinWorkflowDoc(t, "web"))
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections) // before the server stops (goleak)

	for name, tc := range map[string]struct {
		path string
		into any
	}{
		"job":       {"/v1/jobs/" + j.ID, &client.Job{}},
		"jobs":      {"/v1/jobs", &client.Page[client.Job]{}},
		"events":    {"/v1/jobs/" + j.ID + "/events", &client.Page[client.JobEvent]{}},
		"outputs":   {"/v1/jobs/" + j.ID + "/outputs", &client.Page[client.Output]{}},
		"asset":     {"/v1/assets/" + a.ID, &client.Asset{}},
		"assets":    {"/v1/assets", &client.Page[client.Asset]{}},
		"pool":      {"/v1/pools/default", &client.Pool{}},
		"pools":     {"/v1/pools", &client.Page[client.Pool]{}},
		"workflow":  {"/v1/workflows/" + w.ID, &client.Workflow{}},
		"workflows": {"/v1/workflows", &client.Page[client.Workflow]{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+srv.OwnerKey)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(tc.into), "%s", body)
		})
	}
}

// builtinWorkflowDoc is a workflow document whose spec is a built-in's.
func builtinWorkflowDoc(t *testing.T, name string) json.RawMessage {
	t.Helper()
	spec, ok := encodespec.Builtin("mp4-720p")
	require.True(t, ok)
	b, err := json.Marshal(map[string]any{"name": name, "description": "test workflow", "spec": spec})
	require.NoError(t, err)
	return b
}

func TestJobEventsAndOutputs(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	j := urlJob(t, c)
	run := srv.Claim(t, j.ID)
	run.Progress(0.5)
	run.Complete(map[string][]byte{"720p/video.mp4": []byte("video"), "720p/poster.jpg": []byte("jpg")})

	evs, err := c.JobEvents(t.Context(), j.ID)
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type)
	}
	assert.Equal(t, []string{"job.queued", "job.started", "job.completed"}, got)

	outs, err := c.JobOutputs(t.Context(), j.ID)
	require.NoError(t, err)
	require.Len(t, outs, 2)
	for _, o := range outs {
		var buf bytes.Buffer
		n, err := c.Fetch(t.Context(), o.Download.URL, &buf)
		require.NoError(t, err)
		assert.Equal(t, o.SizeBytes, n)
		assert.Equal(t, map[string]string{"720p/video.mp4": "video", "720p/poster.jpg": "jpg"}[o.Name], buf.String())
	}

	_, err = c.JobEvents(t.Context(), uuid.NewString())
	assert.True(t, client.IsNotFound(err), "%v", err)
	assert.False(t, errors.Is(err, syscall.ECONNREFUSED))
}
