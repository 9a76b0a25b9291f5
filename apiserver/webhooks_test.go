package apiserver

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestSSRFRefusedAtCreation: webhook URLs and job input URLs whose host is
// (or resolves to) a non-public address answer 422 naming the field and
// saying why; nothing is created.
func TestSSRFRefusedAtCreation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	tests := map[string]struct {
		url  string
		want string
	}{
		"name resolving to 127.0.0.1":   {"https://loopback.example/hook", "refused: host loopback.example resolves to 127.0.0.1, which is a loopback address"},
		"localhost":                     {"https://localhost:8443/hook", "loopback"},
		"loopback literal":              {"https://127.0.0.1/hook", "refused: 127.0.0.1 is a loopback address"},
		"private literal":               {"https://10.1.2.3/hook", "a private address"},
		"cloud metadata":                {"https://169.254.169.254/latest/meta-data/", "the cloud metadata address"},
		"metadata by name":              {"https://metadata.example/", "the cloud metadata address"},
		"one private address of two":    {"https://private.example/", "10.0.0.5, which is a private address"},
		"carrier-grade NAT":             {"https://100.64.1.1/", "carrier-grade NAT"},
		"v6 loopback by name":           {"https://v6.example/", "::1, which is a loopback address"},
		"v6 unique-local":               {"https://[fd00::1]/", "unique-local"},
		"v4-mapped v6":                  {"https://[::ffff:192.168.0.1]/", "a private address"},
		"plain http in production":      {"http://hooks.example.com/", "plain http is not accepted"},
		"unspecified (0.0.0.0)":         {"https://0.0.0.0/", "this network"},
		"link-local v6 by literal":      {"https://[fe80::1]/", "link-local"},
		"multicast":                     {"https://224.0.0.1/", "multicast"},
		"documentation range (public?)": {"https://203.0.113.9/", "documentation"},
	}
	for name, tt := range tests {
		t.Run("webhook "+name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/webhooks", key, map[string]any{"url": tt.url, "events": []string{"job.completed"}})
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			p := r.problem(t)
			require.Len(t, p.Errors, 1)
			assert.Equal(t, "url", p.Errors[0].Field)
			assert.Contains(t, p.Errors[0].Detail, tt.want)
		})
		t.Run("job input "+name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/jobs", key, map[string]any{"input": map[string]any{"url": tt.url}, "workflow": "mp4-720p"})
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			p := r.problem(t)
			require.Len(t, p.Errors, 1)
			assert.Equal(t, "input.url", p.Errors[0].Field)
			assert.Contains(t, p.Errors[0].Detail, tt.want)
		})
	}
	// A PATCH is checked like a creation.
	var hook apiv1.WebhookCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/a", "events": []string{"job.completed"}}, &hook)
	r := f.do(t, "PATCH", "/v1/webhooks/"+hook.ID, key, map[string]any{"url": "https://loopback.example/"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, []string{"url"}, r.fields(t))

	var list apiv1.Page[apiv1.Webhook]
	f.mustDo(t, http.StatusOK, "GET", "/v1/webhooks", key, nil, &list)
	assert.Len(t, list.Items, 1, "only the public webhook exists")
	n, err := f.queue.Len(t.Context(), "default", "live")
	require.NoError(t, err)
	assert.Zero(t, n, "no refused job was queued")
}

// TestDeliveryLogAPI: a job's events become deliveries of the subscribed
// webhook; the log lists them with filters, one can be read and redelivered;
// another organization sees none of it; a disabled webhook cannot redeliver.
func TestDeliveryLogAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	var hook apiv1.WebhookCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/a", "events": []string{"job.queued", "job.cancelled"}}, &hook)
	assert.Regexp(t, `^whsec_[0-9a-f]{48}$`, hook.Secret)
	job := f.submitJob(t, key, urlJob())
	f.mustDo(t, http.StatusOK, "POST", "/v1/jobs/"+job.ID+"/cancel", key, nil, nil)

	base := "/v1/webhooks/" + hook.ID + "/deliveries"
	var ds apiv1.Page[apiv1.WebhookDelivery]
	f.mustDo(t, http.StatusOK, "GET", base, key, nil, &ds)
	require.Len(t, ds.Items, 2)
	assert.Equal(t, "job.cancelled", ds.Items[0].EventType, "newest first")
	assert.Equal(t, "job.queued", ds.Items[1].EventType)
	for _, d := range ds.Items {
		assert.Equal(t, store.DeliveryPending, d.Status)
		assert.Zero(t, d.Attempts)
		assert.JSONEq(t, `"`+job.ID+`"`, string(mustField(t, d.Payload, "job_id")))
	}
	f.mustDo(t, http.StatusOK, "GET", base+"?status=delivered", key, nil, &ds)
	assert.Empty(t, ds.Items)
	r := f.do(t, "GET", base+"?status=lost", key, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, []string{"status"}, r.fields(t))

	f.mustDo(t, http.StatusOK, "GET", base, key, nil, &ds)
	one := ds.Items[1]
	var got apiv1.WebhookDelivery
	f.mustDo(t, http.StatusOK, "GET", base+"/"+one.ID, key, nil, &got)
	assert.Equal(t, one.EventID, got.EventID)
	f.mustDo(t, http.StatusAccepted, "POST", base+"/"+one.ID+"/redeliver", key, nil, &got)
	assert.Equal(t, store.DeliveryPending, got.Status)

	// Viewers cannot read the log; another organization gets 404s.
	assert.Equal(t, http.StatusForbidden, f.do(t, "GET", base, f.keys[auth.Viewer], nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "GET", base, f.keyB, nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "GET", base+"/"+one.ID, f.keyB, nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "POST", base+"/"+one.ID+"/redeliver", f.keyB, nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "GET", base+"/not-a-uuid", key, nil).Status)

	f.mustDo(t, http.StatusOK, "PATCH", "/v1/webhooks/"+hook.ID, key, map[string]any{"enabled": false}, nil)
	r = f.do(t, "POST", base+"/"+one.ID+"/redeliver", key, nil)
	assert.Equal(t, http.StatusConflict, r.Status)
	assert.Contains(t, r.problem(t).Detail, "enable it")

	// A disabled webhook gets no new deliveries.
	f.submitJob(t, key, urlJob())
	f.mustDo(t, http.StatusOK, "GET", base, key, nil, &ds)
	assert.Len(t, ds.Items, 2)
}

func mustField(t *testing.T, doc []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	return m[name]
}

// TestWebhookLimit: an organization has at most apiv1.MaxWebhooks webhooks
// (409 past it, nothing created); another organization is not counted
// against it, and deleting one makes room again.
func TestWebhookLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	body := map[string]any{"url": "https://hooks.example.com/a", "events": []string{"job.completed"}}
	var last apiv1.WebhookCreated
	for range apiv1.MaxWebhooks - 5 {
		f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", key, body, &last)
	}
	// The last places are raced for: exactly 5 creations of 12 succeed.
	var wg sync.WaitGroup
	statuses := make(chan int, 12)
	for range 12 {
		wg.Go(func() { statuses <- f.do(t, "POST", "/v1/webhooks", key, body).Status })
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		if s == http.StatusCreated {
			created++
		} else {
			assert.Equal(t, http.StatusConflict, s)
		}
	}
	assert.Equal(t, 5, created)
	r := f.do(t, "POST", "/v1/webhooks", key, body)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	assert.Contains(t, string(r.Body), "the most it may have")
	var page apiv1.Page[apiv1.Webhook]
	f.mustDo(t, http.StatusOK, "GET", "/v1/webhooks?limit=100", key, nil, &page)
	assert.Len(t, page.Items, apiv1.MaxWebhooks, "the refused one was not created")

	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", f.keyB, body, nil)
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/webhooks/"+last.ID, key, nil, nil)
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", key, body, nil)
}
