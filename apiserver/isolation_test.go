package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestTenantIsolation: org A's jobs, assets, workflows, webhooks, pools and
// members are invisible to org B (404, never 403, never data) and B can
// change none of them — even with A's ids in hand.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.keys[auth.Owner]
	var wf apiv1.Workflow
	f.mustDo(t, http.StatusCreated, "POST", "/v1/workflows", a, map[string]any{"name": "w", "spec": map[string]any{"packaging": "mp4", "renditions": []any{map[string]any{"codec": "h264", "height": 360, "bitrate_kbps": 800}}}}, &wf)
	var asset apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", a, map[string]any{"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 1}, &asset)
	job := f.submitJob(t, a, map[string]any{"input": map[string]any{"asset_id": asset.ID}, "workflow_id": wf.ID})
	var hook apiv1.WebhookCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", a, map[string]any{"url": "https://hooks.example.com/a", "events": []string{"job.completed"}}, &hook)
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", a, map[string]any{"name": "a-pool"}, &pool)
	members, err := f.store.ListMembers(t.Context(), f.orgA.ID)
	require.NoError(t, err)
	memberID := members[1].UserID.String()
	var issued apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/members/"+memberID+"/api-keys", a, map[string]any{"name": "issued"}, &issued)
	var inv apiv1.InvitationCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/members/"+memberID+"/invitations", a, map[string]any{}, &inv)
	bMembers, err := f.store.ListMembers(t.Context(), f.orgB.ID)
	require.NoError(t, err)
	bOwnerID := bMembers[0].UserID.String()

	b := f.keyB
	attempts := []struct{ method, path, body string }{
		{"GET", "/v1/jobs/" + job.ID, ""},
		{"POST", "/v1/jobs/" + job.ID + "/cancel", ""},
		{"GET", "/v1/jobs/" + job.ID + "/events", ""},
		{"GET", "/v1/workflows/" + wf.ID, ""},
		{"PATCH", "/v1/workflows/" + wf.ID, `{"name":"stolen"}`},
		{"DELETE", "/v1/workflows/" + wf.ID, ""},
		{"GET", "/v1/assets/" + asset.ID, ""},
		{"DELETE", "/v1/assets/" + asset.ID, ""},
		{"GET", "/v1/webhooks/" + hook.ID, ""},
		{"PATCH", "/v1/webhooks/" + hook.ID, `{"url":"https://evil.example.com/"}`},
		{"DELETE", "/v1/webhooks/" + hook.ID, ""},
		{"GET", "/v1/pools/" + pool.ID, ""},
		{"GET", "/v1/pools/" + pool.ID + "/plan", ""},
		{"PATCH", "/v1/pools/" + pool.ID, `{"max_replicas":100}`},
		{"POST", "/v1/pools/" + pool.ID + "/pause", ""},
		{"POST", "/v1/pools/" + pool.ID + "/resume", ""},
		{"DELETE", "/v1/pools/" + pool.ID, ""},
		{"PATCH", "/v1/members/" + memberID, `{"role":"viewer"}`},
		{"DELETE", "/v1/members/" + memberID, ""},
		{"GET", "/v1/members/" + memberID + "/api-keys", ""},
		{"POST", "/v1/members/" + memberID + "/api-keys", `{"name":"stolen"}`},
		{"DELETE", "/v1/members/" + memberID + "/api-keys/" + issued.ID, ""},
		{"DELETE", "/v1/members/" + bOwnerID + "/api-keys/" + issued.ID, ""},
		{"GET", "/v1/members/" + memberID + "/invitations", ""},
		{"POST", "/v1/members/" + memberID + "/invitations", `{}`},
		{"DELETE", "/v1/members/" + memberID + "/invitations/" + inv.ID, ""},
		{"DELETE", "/v1/members/" + bOwnerID + "/invitations/" + inv.ID, ""},
		{"DELETE", "/v1/api-keys/" + issued.ID, ""},
		{"POST", "/v1/jobs", `{"input":{"asset_id":"` + asset.ID + `"},"workflow":"mp4-720p"}`},
		{"POST", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow_id":"` + wf.ID + `"}`},
		{"POST", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","pool":"` + pool.ID + `"}`},
	}
	for _, at := range attempts {
		t.Run(at.method+" "+at.path, func(t *testing.T) {
			var body []byte
			if at.body != "" {
				body = []byte(at.body)
			}
			r := f.raw(t, at.method, at.path, b, body, nil)
			if at.path == "/v1/jobs" {
				// A reference to another org's object is a field that names nothing.
				require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			} else {
				require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
			}
			for _, secret := range []string{"a.mp4", "a-pool", "hooks.example.com", "owner@a.example", "viewer@a.example", issued.Prefix, "issued"} {
				assert.NotContains(t, string(r.Body), secret, "leaks org A's data")
			}
		})
	}

	// B's lists show none of A's objects.
	for _, path := range []string{"/v1/jobs", "/v1/workflows", "/v1/assets", "/v1/webhooks", "/v1/pools", "/v1/members", "/v1/workers"} {
		r := f.do(t, "GET", path, b, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
		for _, id := range []string{job.ID, wf.ID, asset.ID, hook.ID, pool.ID, memberID} {
			assert.NotContains(t, string(r.Body), id, "%s lists org A's %s", path, id)
		}
	}

	// And nothing of A's changed.
	var still apiv1.Job
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+job.ID, a, nil, &still)
	assert.Equal(t, store.JobQueued, still.Status)
	var p apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, a, nil, &p)
	assert.Equal(t, "active", p.Status)
	assert.Equal(t, 10, p.MaxReplicas)
	paused, err := f.queue.Paused(t.Context(), pool.ID)
	require.NoError(t, err)
	assert.False(t, paused)
	var w apiv1.Workflow
	f.mustDo(t, http.StatusOK, "GET", "/v1/workflows/"+wf.ID, a, nil, &w)
	assert.Equal(t, "w", w.Name)
	assert.False(t, strings.Contains(string(f.do(t, "GET", "/v1/members", a, nil).Body), "stolen"))
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", issued.Key, nil, nil)
	var invs apiv1.Page[apiv1.Invitation]
	f.mustDo(t, http.StatusOK, "GET", "/v1/members/"+memberID+"/invitations", a, nil, &invs)
	require.Len(t, invs.Items, 1, "B made no invitation for A's member")
	assert.Equal(t, store.InvitationPending, invs.Items[0].Status)
	var keys apiv1.Page[apiv1.APIKey]
	f.mustDo(t, http.StatusOK, "GET", "/v1/members/"+memberID+"/api-keys", a, nil, &keys)
	assert.Len(t, keys.Items, 2, "the fixture's key and the issued one; B issued none")
}
