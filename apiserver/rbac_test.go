package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// concretePath fills every :param with an id that exists nowhere, so an
// allowed request reaches its handler and answers 404 or 422, never 403.
func concretePath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if strings.HasPrefix(part, ":") {
			parts[i] = uuid.NewString()
		}
	}
	return strings.Join(parts, "/")
}

// TestRBACMatrix walks every route the server registers through the route
// table, with a key of every role, and checks the answer against the
// permission matrix: denied is 403 "forbidden"; allowed is neither 401 nor
// 403. A route added to the table is covered without touching this test.
func TestRBACMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, r := range f.srv.Routes() {
		for _, role := range auth.Roles {
			t.Run(r.Method+" "+r.Path+" as "+string(role), func(t *testing.T) {
				var body any
				if r.Body != nil {
					body = map[string]any{}
				}
				resp := f.do(t, r.Method, concretePath(r.Path), f.keys[role], body)
				if auth.Allowed(role, r.Perm) {
					assert.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, resp.Status, "allowed, got %s", resp.Body)
					assert.Less(t, resp.Status, 500, "5xx: %s", resp.Body)
				} else {
					require.Equal(t, http.StatusForbidden, resp.Status, "denied, got %s", resp.Body)
					assert.Equal(t, problemPrefix+"forbidden", resp.problem(t).Type)
				}
			})
		}
	}
}

// TestUnauthenticated: every table route refuses a missing, malformed or
// revoked key with 401.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var revoked struct {
		ID  uuid.UUID `json:"id"`
		Key string    `json:"key"`
	}
	f.mustDo(t, http.StatusCreated, "POST", "/v1/api-keys", f.keys[auth.Owner], map[string]any{"name": "to revoke"}, &revoked)
	f.mustDo(t, http.StatusOK, "DELETE", "/v1/api-keys/"+revoked.ID.String(), f.keys[auth.Owner], nil, nil)
	badKeys := map[string]string{
		"none":      "",
		"garbage":   "not-a-key",
		"revoked":   revoked.Key,
		"tampered":  tamper(f.keys[auth.Owner]),
		"truncated": f.keys[auth.Owner][:20],
	}
	for _, r := range f.srv.Routes() {
		for name, key := range badKeys {
			t.Run(r.Method+" "+r.Path+" "+name, func(t *testing.T) {
				resp := f.do(t, r.Method, concretePath(r.Path), key, nil)
				require.Equal(t, http.StatusUnauthorized, resp.Status, "%s", resp.Body)
				assert.Equal(t, problemPrefix+"unauthenticated", resp.problem(t).Type)
				assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			})
		}
	}
}

// TestEveryRegisteredRouteIsInTheTable: nothing reaches a handler without
// going through the route table (and so through authorize), except the
// public endpoints listed here: probes, the API document, redeeming an
// invitation (the token in the body is that call's credential), and
// signing the console in (the key in the body) and out (its own session).
func TestEveryRegisteredRouteIsInTheTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	table := map[string]bool{}
	for _, r := range f.srv.Routes() {
		table[r.Method+" "+r.Path] = true
	}
	public := map[string]bool{"GET /health": true, "GET /ready": true, "GET /v1/openapi.json": true, "POST /v1/invitations/redeem": true,
		"POST /v1/console/session": true, "DELETE /v1/console/session": true}
	for _, r := range f.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue // Fiber mirrors every GET as HEAD
		}
		k := r.Method + " " + r.Path
		assert.True(t, table[k] || public[k], "route %s is registered outside the route table", k)
	}
}

// wantLeastRole is the least role that may call each route, written by hand
// from the reference document's table (the row each route belongs to is in
// the comment). A route in the table but missing here fails the test, so a
// new route must say who may call it.
var wantLeastRole = map[string]auth.Role{
	// Job Create/Cancel: Editor; Job Read: Viewer
	"POST /v1/jobs": auth.Editor, "GET /v1/jobs": auth.Viewer, "GET /v1/jobs/:id": auth.Viewer,
	"GET /v1/console/session":  auth.Viewer,
	"POST /v1/jobs/:id/cancel": auth.Editor, "GET /v1/jobs/:id/events": auth.Viewer, "GET /v1/jobs/:id/outputs": auth.Viewer,
	"GET /v1/jobs/:id/files/*": auth.Viewer,
	"GET /v1/jobs/:id/key":     auth.Viewer, "POST /v1/jobs/:id/clearkey": auth.Viewer, "GET /ws": auth.Viewer,
	// Batches are jobs in bulk: Job Create/Cancel (submit, cancel, retry failed): Editor; Job Read: Viewer
	"POST /v1/batches": auth.Editor, "GET /v1/batches": auth.Viewer, "GET /v1/batches/:id": auth.Viewer,
	"POST /v1/batches/:id/cancel": auth.Editor, "POST /v1/batches/:id/retry-failed": auth.Editor,
	// Workflow Read: Viewer; Workflow Create/Update/Delete: Editor
	"POST /v1/workflows": auth.Editor, "GET /v1/workflows": auth.Viewer, "GET /v1/workflows/:id": auth.Viewer,
	"PATCH /v1/workflows/:id": auth.Editor, "DELETE /v1/workflows/:id": auth.Editor,
	// Asset Read/Download: Viewer; Asset Upload/Delete: Editor
	"POST /v1/assets": auth.Editor, "GET /v1/assets": auth.Viewer, "GET /v1/assets/:id": auth.Viewer, "DELETE /v1/assets/:id": auth.Editor,
	// Multipart uploads are uploading (listing parts serves resuming): Asset Upload: Editor
	"POST /v1/assets/:id/upload/parts": auth.Editor, "GET /v1/assets/:id/upload/parts": auth.Editor,
	"POST /v1/assets/:id/upload/complete": auth.Editor, "DELETE /v1/assets/:id/upload": auth.Editor,
	// Webhook CRUD: Editor
	"POST /v1/webhooks": auth.Editor, "GET /v1/webhooks": auth.Editor, "GET /v1/webhooks/:id": auth.Editor,
	"PATCH /v1/webhooks/:id": auth.Editor, "DELETE /v1/webhooks/:id": auth.Editor,
	"GET /v1/webhooks/:id/deliveries": auth.Editor, "GET /v1/webhooks/:id/deliveries/:delivery_id": auth.Editor,
	"POST /v1/webhooks/:id/deliveries/:delivery_id/redeliver": auth.Editor,
	// Organization Read/Usage: Viewer; Organization Update: Admin; Manage Billing: Owner
	"GET /v1/organization": auth.Viewer, "PATCH /v1/organization": auth.Admin, "GET /v1/organization/usage": auth.Viewer,
	"GET /v1/organization/billing": auth.Owner, "PATCH /v1/organization/billing": auth.Owner,
	// Manage Members: Admin (listing is Organization Read)
	"GET /v1/members": auth.Viewer, "POST /v1/members": auth.Admin, "PATCH /v1/members/:id": auth.Admin, "DELETE /v1/members/:id": auth.Admin,
	// Keys and invitations an admin makes for another member are Manage Members: Admin
	"POST /v1/members/:id/api-keys": auth.Admin, "GET /v1/members/:id/api-keys": auth.Admin, "DELETE /v1/members/:id/api-keys/:key_id": auth.Admin,
	"POST /v1/members/:id/invitations": auth.Admin, "GET /v1/members/:id/invitations": auth.Admin,
	"DELETE /v1/members/:id/invitations/:invitation_id": auth.Admin,
	// Own API keys: any member (a key never carries more than its member's role)
	"GET /v1/api-keys": auth.Viewer, "POST /v1/api-keys": auth.Viewer, "DELETE /v1/api-keys/:id": auth.Viewer,
	// Pool Manage: Admin (reading pools is Organization Read)
	"GET /v1/pools": auth.Viewer, "POST /v1/pools": auth.Admin, "GET /v1/pools/:id": auth.Viewer, "PATCH /v1/pools/:id": auth.Admin, "POST /v1/pools/:id/plan": auth.Admin,
	"POST /v1/pools/:id/pause": auth.Admin, "POST /v1/pools/:id/resume": auth.Admin, "DELETE /v1/pools/:id": auth.Admin,
	// A pool's plan (the objects the operator applies) is reading its settings: Organization Read
	"GET /v1/pools/:id/plan": auth.Viewer,
	// Worker Read: Admin; Worker Manage: SuperAdmin
	"GET /v1/workers": auth.Admin, "POST /v1/workers/:id/drain": auth.SuperAdmin, "POST /v1/workers/:id/evict": auth.SuperAdmin,
	// Platform Admin: SuperAdmin
	"GET /v1/admin/organizations": auth.SuperAdmin, "POST /v1/admin/organizations/:id/suspend": auth.SuperAdmin,
	"PATCH /v1/admin/organizations/:id":          auth.SuperAdmin,
	"POST /v1/admin/organizations/:id/reinstate": auth.SuperAdmin,
	// Storage grants open other buckets to a tenant, read with the server's credentials: Platform Admin
	"GET /v1/admin/organizations/:id/storage-grants": auth.SuperAdmin, "POST /v1/admin/organizations/:id/storage-grants": auth.SuperAdmin,
	"DELETE /v1/admin/organizations/:id/storage-grants/:grant_id": auth.SuperAdmin,
	// The platform policy decides what every tenant may run: Platform Admin
	"GET /v1/platform/policy": auth.SuperAdmin, "PUT /v1/platform/policy": auth.SuperAdmin,
}

// TestRoutePermissionsMatchTheDocument: each route's permission admits
// exactly the roles from its least role up — checked against the hand-written
// map above, not against the code's own table.
func TestRoutePermissionsMatchTheDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seen := map[string]bool{}
	for _, r := range f.srv.Routes() {
		k := r.Method + " " + r.Path
		seen[k] = true
		least, ok := wantLeastRole[k]
		if !assert.True(t, ok, "route %s has no expected role in wantLeastRole", k) {
			continue
		}
		for _, role := range auth.Roles {
			assert.Equal(t, role.AtLeast(least), auth.Allowed(role, r.Perm), "%s as %s", k, role)
		}
	}
	for k := range wantLeastRole {
		assert.True(t, seen[k], "wantLeastRole names %s, which the server does not register", k)
	}
}

// tamper changes the last character of a key, always to a different one.
func tamper(key string) string {
	c := byte('x')
	if key[len(key)-1] == c {
		c = 'y'
	}
	return key[:len(key)-1] + string(c)
}
