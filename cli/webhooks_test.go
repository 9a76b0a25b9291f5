package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

func TestWebhooksCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)

	out := runCLI(t, nil, "webhooks", "create", "--url", "https://hooks.example.com/a", "--event", "job.queued", "--event", "job.failed", "--description", "ops pager").OK(t)
	m := regexp.MustCompile(`signing secret \(shown once, store it now\): (whsec_\w+)`).FindStringSubmatch(out)
	require.Len(t, m, 2, out)
	rows := fields(out)
	require.GreaterOrEqual(t, len(rows), 2, out)
	assert.Equal(t, []string{"ID", "URL", "EVENTS", "ENABLED", "FAILURES", "DESCRIPTION"}, rows[0])
	id := rows[1][0]
	assert.Equal(t, []string{id, "https://hooks.example.com/a", "job.queued,job.failed", "true", "0", "ops", "pager"}, rows[1])

	var created client.CreatedWebhook
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "create", "--url", "https://hooks.example.com/b", "--event", "pool.paused", "-o", "json").OK(t)), &created))
	assert.True(t, strings.HasPrefix(created.Secret, "whsec_"))

	var page client.Page[client.Webhook]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "list", "-o", "json").OK(t)), &page))
	require.Len(t, page.Items, 2)
	assert.Equal(t, created.ID, page.Items[0].ID, "newest first")
	assert.NotContains(t, runCLI(t, nil, "webhooks", "list", "-o", "yaml").OK(t), "whsec_", "the secret is shown at creation only")

	var w client.Webhook
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "update", id, "--enabled=false", "--event", "job.completed", "-o", "json").OK(t)), &w))
	assert.False(t, w.Enabled)
	assert.Equal(t, []string{"job.completed"}, w.Events)
	assert.Equal(t, "ops pager", w.Description, "only the given flags change")
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "get", id, "-o", "json").OK(t)), &w))
	assert.Equal(t, "https://hooks.example.com/a", w.URL)

	// A queued job is a delivery to a webhook subscribed to job.queued.
	runCLI(t, nil, "webhooks", "update", id, "--enabled=true", "--event", "job.queued").OK(t)
	job := submitURLJob(t, apiClient(t, srv))
	var ds client.Page[client.WebhookDelivery]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "deliveries", id, "--status", "pending", "-o", "json").OK(t)), &ds))
	require.Len(t, ds.Items, 1)
	assert.Equal(t, "job.queued", ds.Items[0].EventType)
	assert.Contains(t, string(ds.Items[0].Payload), job.ID)
	rows = fields(runCLI(t, nil, "webhooks", "deliveries", id).OK(t))
	assert.Equal(t, []string{"ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "LATENCY", "AGE", "ERROR"}, rows[0])
	assert.Equal(t, []string{ds.Items[0].ID, "job.queued", "pending", "0"}, rows[1][:4])
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "deliveries", id, "--status", "failed", "-o", "json").OK(t)), &ds))
	assert.Empty(t, ds.Items)

	delivery := fields(runCLI(t, nil, "webhooks", "deliveries", id).OK(t))[1][0]
	var d client.WebhookDelivery
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "webhooks", "redeliver", id, delivery, "-o", "json").OK(t)), &d))
	assert.Equal(t, "pending", d.Status)
	assert.Equal(t, 0, d.Attempts)

	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"create without events": {[]string{"webhooks", "create", "--url", "https://hooks.example.com/c"}, 2, "mpegflow: create needs --url and at least one --event (job.queued, "},
		"unknown event":         {[]string{"webhooks", "create", "--url", "https://hooks.example.com/c", "--event", "job.done"}, 2, `mpegflow: unknown event "job.done": want one of job.queued,`},
		"not an https URL":      {[]string{"webhooks", "create", "--url", "ftp://hooks.example.com/c", "--event", "job.failed"}, 1, "mpegflow: create webhook: 422 validation: url: "},
		"nothing to update":     {[]string{"webhooks", "update", id}, 2, "mpegflow: nothing to update: give at least one of --url, --description, --event, --enabled"},
		"bad status":            {[]string{"webhooks", "deliveries", id, "--status", "lost"}, 2, `mpegflow: --status must be pending, delivered or failed, not "lost"`},
		"redeliver one id":      {[]string{"webhooks", "redeliver", id}, 2, "mpegflow: usage: mpegflow webhooks redeliver WEBHOOK-ID DELIVERY-ID"},
		"no such webhook":       {[]string{"webhooks", "get", "0192f0c4-0000-7000-8000-000000000000"}, 1, "mpegflow: get webhook 0192f0c4-0000-7000-8000-000000000000: 404 not-found: webhook not found"},
	} {
		t.Run(name, func(t *testing.T) {
			line := runCLI(t, nil, tc.args...).Failed(t, tc.code)
			assert.True(t, strings.HasPrefix(line, tc.want), "got  %s\nwant %s", line, tc.want)
		})
	}

	assert.Equal(t, "webhook "+id+" deleted\n", runCLI(t, nil, "webhooks", "delete", id).OK(t))
	assert.Contains(t, runCLI(t, nil, "webhooks", "get", id).Failed(t, 1), "404 not-found")

	useServer(t, srv.URL, srv.ViewerKey)
	assert.Contains(t, runCLI(t, nil, "webhooks", "list").Failed(t, 1), "403 forbidden")
}
