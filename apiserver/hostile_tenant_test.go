package apiserver

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

// The hostile-tenant suite: organization B, with a key of every role,
// attacks organization A on one stack (real Postgres, Redis and S3). It
// walks every route the Fiber app registers; a route missing from
// hostileRoutes fails TestHostileTenantRoutesAreAllAttacked, so a new route
// is attacked from the day it is added. Each test logs its case counts as
// "hostile inventory" lines, the table docs/security.md quotes.

// objKind is the kind of object a path parameter names.
type objKind string

const (
	kindJob       objKind = "job"
	kindFinished  objKind = "finished job"  // completed, with outputs
	kindEncrypted objKind = "encrypted job" // with a stored content key
	// kindContentKey is not an id but the encrypted job's key ID, in the
	// unpadded base64url a ClearKey license request names it by.
	kindContentKey objKind = "content key id"
	kindAsset      objKind = "asset"
	kindUpload     objKind = "uploading asset" // an asset with an open multipart upload
	kindWorkflow   objKind = "workflow"
	kindWebhook    objKind = "webhook"
	kindDelivery   objKind = "delivery"
	kindBatch      objKind = "batch"
	kindMember     objKind = "member"
	kindKey        objKind = "api key"
	kindMemberKey  objKind = "member's api key" // issued by an admin for kindMember
	kindInvite     objKind = "invitation"       // of kindMember
	kindGrant      objKind = "storage grant"    // a platform grant to the organization
	kindPool       objKind = "pool"
	kindWorker     objKind = "worker"
	kindOrg        objKind = "organization"
)

// uuidKinds are the kinds whose ids are UUIDs (pools and workers have
// string ids).
var uuidKinds = map[objKind]bool{
	kindJob: true, kindFinished: true, kindEncrypted: true, kindAsset: true, kindUpload: true, kindWorkflow: true, kindWebhook: true,
	kindDelivery: true, kindBatch: true, kindMember: true, kindKey: true, kindOrg: true,
	kindMemberKey: true, kindInvite: true, kindGrant: true,
}

// hostileBody is one request body B sends to a route.
type hostileBody struct {
	name string
	json func(w *hostileWorld) string
	// want is the answer for a role the route admits (0: the route's want).
	want int
	// field is the field a 422 must name.
	field string
	// header is sent with the body (an Idempotency-Key, say).
	header map[string]string
	// once sends the body only as the first role the route admits: it
	// creates something unique in B (a name A uses too), so a second send
	// would meet B's own first one.
	once bool
}

// hostileRoute says how B attacks one route.
type hostileRoute struct {
	// params is the kind of A's object each path parameter names, in order.
	params []objKind
	// query is appended to the URL: A's ids in filters and cursors.
	query func(w *hostileWorld) string
	// bodies are the bodies B sends, each a case; none: one case without.
	bodies []hostileBody
	// want is the answer for a role the route admits (a role it does not
	// admit gets 403 before any lookup).
	want int
	// platform marks routes that act across organizations by design for
	// the platform's SuperAdmin (fleet and organization administration):
	// B's SuperAdmin is the platform there, not a tenant, and is not sent.
	platform bool
	// public routes take no key.
	public bool
	// elsewhere names the test that attacks the route instead.
	elsewhere string
}

// jobBody is a job submission with the given input, workflow and pool.
func jobBody(input, workflowID, pool string) string {
	m := map[string]any{"input": json.RawMessage(input)}
	if workflowID != "" {
		m["workflow_id"] = workflowID
	} else {
		m["workflow"] = "mp4-720p"
	}
	if pool != "" {
		m["pool"] = pool
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func assetInput(id string) string { return fmt.Sprintf(`{"asset_id":%q}`, id) }

// hostileRoutes is every registered route and how B attacks it.
var hostileRoutes = map[string]hostileRoute{
	"GET /health":          {public: true, want: 200},
	"GET /ready":           {public: true, want: 200},
	"GET /v1/openapi.json": {public: true, want: 200},

	"POST /v1/jobs": {want: 201, bodies: []hostileBody{
		{name: "other org's asset", json: func(w *hostileWorld) string { return jobBody(assetInput(w.a[kindAsset]), "", "") }, want: 422, field: "input.asset_id"},
		{name: "other org's asset, upper-case", json: func(w *hostileWorld) string {
			return jobBody(assetInput(strings.ToUpper(w.a[kindAsset])), "", "")
		}, want: 422, field: "input.asset_id"},
		{name: "other org's asset, braced", json: func(w *hostileWorld) string { return jobBody(assetInput("{"+w.a[kindAsset]+"}"), "", "") }, want: 422, field: "input.asset_id"},
		{name: "other org's workflow", json: func(w *hostileWorld) string {
			return jobBody(assetInput(w.b[kindAsset]), w.a[kindWorkflow], "")
		}, want: 422, field: "workflow_id"},
		{name: "other org's pool", json: func(w *hostileWorld) string {
			return jobBody(assetInput(w.b[kindAsset]), "", w.a[kindPool])
		}, want: 422, field: "pool"},
		{name: "own objects (control)", json: func(w *hostileWorld) string {
			return jobBody(assetInput(w.b[kindAsset]), w.b[kindWorkflow], w.b[kindPool])
		}, want: 201},
		// Idempotency keys are per organization: A's key creates B's own
		// job, never a replay of A's.
		{name: "other org's idempotency key", want: 201, once: true, header: map[string]string{"Idempotency-Key": "idem-secret-a"},
			json: func(w *hostileWorld) string { return jobBody(assetInput(w.b[kindAsset]), "", "") }},
	}},
	"GET /v1/jobs": {want: 200, query: func(w *hostileWorld) string {
		return "pool=" + w.a[kindPool] + "&cursor=" + url.QueryEscape(w.cursorA)
	}},
	"GET /v1/jobs/:id":         {params: []objKind{kindJob}, want: 404},
	"POST /v1/jobs/:id/cancel": {params: []objKind{kindJob}, want: 404},
	"GET /v1/jobs/:id/events":  {params: []objKind{kindJob}, want: 404},
	"GET /v1/jobs/:id/outputs": {params: []objKind{kindFinished}, want: 404},
	"GET /v1/jobs/:id/files/*": {params: []objKind{kindFinished}, want: 404},
	"GET /v1/jobs/:id/key":     {params: []objKind{kindEncrypted}, want: 404},
	"POST /v1/jobs/:id/clearkey": {params: []objKind{kindEncrypted}, want: 404, bodies: []hostileBody{
		{name: "A's key id", json: func(w *hostileWorld) string { return fmt.Sprintf(`{"kids":[%q]}`, w.a[kindContentKey]) }},
	}},
	"GET /ws":                           {elsewhere: "TestHostileTenantWebSocket"},
	"GET /v1/batches":                   {want: 200},
	"GET /v1/batches/:id":               {params: []objKind{kindBatch}, want: 404},
	"POST /v1/batches/:id/cancel":       {params: []objKind{kindBatch}, want: 404},
	"POST /v1/batches/:id/retry-failed": {params: []objKind{kindBatch}, want: 404},
	"POST /v1/batches": {want: 201, bodies: []hostileBody{
		{name: "other org's workflow", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"workflow_id":%q,"source":{"prefix":%q}}`, w.a[kindWorkflow], w.prefixB)
		}, want: 422, field: "workflow_id"},
		{name: "other org's manifest", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"workflow":"mp4-720p","source":{"manifest_asset_id":%q}}`, w.a[kindAsset])
		}, want: 422, field: "source.manifest_asset_id"},
		{name: "other org's prefix", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"workflow":"mp4-720p","source":{"prefix":%q}}`, w.prefixA)
		}, want: 422, field: "source.prefix"},
		{name: "other org's pool", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"workflow":"mp4-720p","pool":%q,"source":{"prefix":%q}}`, w.a[kindPool], w.prefixB)
		}, want: 422, field: "pool"},
		{name: "own objects (control)", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"key":"control-%d","workflow_id":%q,"pool":%q,"source":{"prefix":%q}}`, w.next(), w.b[kindWorkflow], w.b[kindPool], w.prefixB)
		}, want: 201},
		// Batch keys are per organization: A's key makes a new batch of B's,
		// never a replay of A's batch.
		{name: "other org's batch key", want: 201, once: true, json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"key":"batch-secret-a","workflow":"mp4-720p","source":{"prefix":%q}}`, w.prefixB)
		}},
	}},

	"POST /v1/workflows": {want: 201, bodies: []hostileBody{
		{name: "own workflow", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"name":"b-%d","spec":%s}`, w.next(), hostileSpec)
		}},
		// Names are per organization: A's name is free in B, and taking it
		// tells B nothing about A.
		{name: "other org's workflow name", once: true, json: fixed(`{"name":"workflow-secret-a","spec":` + hostileSpec + `}`)},
	}},
	"GET /v1/workflows":        {want: 200},
	"GET /v1/workflows/:id":    {params: []objKind{kindWorkflow}, want: 404},
	"PATCH /v1/workflows/:id":  {params: []objKind{kindWorkflow}, want: 404, bodies: []hostileBody{{name: "rename", json: func(*hostileWorld) string { return `{"name":"stolen"}` }}}},
	"DELETE /v1/workflows/:id": {params: []objKind{kindWorkflow}, want: 404},

	"POST /v1/assets": {want: 201, bodies: []hostileBody{{name: "own asset", json: func(*hostileWorld) string {
		return `{"filename":"b.mp4","content_type":"video/mp4","size_bytes":1}`
	}}}},
	"GET /v1/assets":                   {want: 200},
	"GET /v1/assets/:id":               {params: []objKind{kindAsset}, want: 404},
	"DELETE /v1/assets/:id":            {params: []objKind{kindAsset}, want: 404},
	"POST /v1/assets/:id/upload/parts": {params: []objKind{kindUpload}, want: 404, bodies: []hostileBody{{name: "presign", json: fixed(`{"part_numbers":[1,2]}`)}}},
	"GET /v1/assets/:id/upload/parts":  {params: []objKind{kindUpload}, want: 404},
	"POST /v1/assets/:id/upload/complete": {params: []objKind{kindUpload}, want: 404, bodies: []hostileBody{
		{name: "complete", json: fixed(`{"parts":[{"part_number":1,"etag":"\"0\""},{"part_number":2,"etag":"\"0\""}]}`)}}},
	"DELETE /v1/assets/:id/upload": {params: []objKind{kindUpload}, want: 404},

	"POST /v1/webhooks": {want: 201, bodies: []hostileBody{{name: "own webhook", json: func(*hostileWorld) string {
		return `{"url":"https://hooks.b.example/h","events":["job.completed"]}`
	}}}},
	"GET /v1/webhooks":                                        {want: 200},
	"GET /v1/webhooks/:id":                                    {params: []objKind{kindWebhook}, want: 404},
	"PATCH /v1/webhooks/:id":                                  {params: []objKind{kindWebhook}, want: 404, bodies: []hostileBody{{name: "redirect", json: func(*hostileWorld) string { return `{"url":"https://evil.example.com/","enabled":true}` }}}},
	"DELETE /v1/webhooks/:id":                                 {params: []objKind{kindWebhook}, want: 404},
	"GET /v1/webhooks/:id/deliveries":                         {params: []objKind{kindWebhook}, want: 404},
	"GET /v1/webhooks/:id/deliveries/:delivery_id":            {params: []objKind{kindWebhook, kindDelivery}, want: 404},
	"POST /v1/webhooks/:id/deliveries/:delivery_id/redeliver": {params: []objKind{kindWebhook, kindDelivery}, want: 404},

	"GET /v1/organization":           {want: 200},
	"PATCH /v1/organization":         {want: 200, bodies: []hostileBody{{name: "rename own", json: func(*hostileWorld) string { return `{"name":"Org B"}` }}}},
	"GET /v1/organization/usage":     {want: 200},
	"GET /v1/organization/billing":   {want: 200},
	"PATCH /v1/organization/billing": {want: 200, bodies: []hostileBody{{name: "own contact", json: func(*hostileWorld) string { return `{"billing_name":"Org B billing"}` }}}},

	"GET /v1/members": {want: 200},
	"POST /v1/members": {want: 201, bodies: []hostileBody{{name: "new member", json: func(w *hostileWorld) string {
		return fmt.Sprintf(`{"email":"new-%d@b.example","role":"viewer"}`, w.next())
	}}}},
	"PATCH /v1/members/:id":  {params: []objKind{kindMember}, want: 404, bodies: []hostileBody{{name: "demote", json: func(*hostileWorld) string { return `{"role":"viewer"}` }}}},
	"DELETE /v1/members/:id": {params: []objKind{kindMember}, want: 404},

	"POST /v1/members/:id/api-keys":                     {params: []objKind{kindMember}, want: 404, bodies: []hostileBody{{name: "issue", json: fixed(`{"name":"stolen"}`)}}},
	"GET /v1/members/:id/api-keys":                      {params: []objKind{kindMember}, want: 404},
	"DELETE /v1/members/:id/api-keys/:key_id":           {params: []objKind{kindMember, kindMemberKey}, want: 404},
	"POST /v1/members/:id/invitations":                  {params: []objKind{kindMember}, want: 404, bodies: []hostileBody{{name: "invite", json: fixed(`{}`)}}},
	"GET /v1/members/:id/invitations":                   {params: []objKind{kindMember}, want: 404},
	"DELETE /v1/members/:id/invitations/:invitation_id": {params: []objKind{kindMember, kindInvite}, want: 404},
	// The key is the credential of signing in: a tampered or made-up key
	// of A's is refused alike; signing out touches only the caller's own
	// session; the session route tells B about B.
	"POST /v1/console/session": {public: true, want: 401, bodies: []hostileBody{
		{name: "other org's key tampered", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"api_key":%q}`, tamper(w.f.keys[auth.Owner]))
		}},
		{name: "other org's invitation token", want: 422, field: "api_key", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"api_key":%q}`, w.inviteA)
		}},
	}},
	"DELETE /v1/console/session": {public: true, want: 204},
	"GET /v1/console/session":    {want: 200},
	// The token is the credential of this route: every token but a real
	// one answers alike, and none of them yields anything of A's.
	"POST /v1/invitations/redeem": {public: true, want: 404, bodies: []hostileBody{
		{name: "other org's token tampered", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"token":%q}`, tamper(w.inviteA))
		}},
		{name: "other org's token prefix, made-up secret", json: func(w *hostileWorld) string {
			prefix := w.inviteA[:strings.LastIndex(w.inviteA, "_")]
			return fmt.Sprintf(`{"token":%q}`, prefix+"_"+strings.Repeat("a", len(w.inviteA)-len(prefix)-1))
		}},
		{name: "other org's invitation id", want: 422, field: "token", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"token":%q}`, w.a[kindInvite])
		}},
		{name: "other org's api key", want: 422, field: "token", json: func(w *hostileWorld) string {
			return fmt.Sprintf(`{"token":%q}`, w.f.keys[auth.Owner])
		}},
	}},
	"GET /v1/api-keys":        {want: 200},
	"POST /v1/api-keys":       {want: 201, bodies: []hostileBody{{name: "own key", json: func(*hostileWorld) string { return `{"name":"b"}` }}}},
	"DELETE /v1/api-keys/:id": {params: []objKind{kindKey}, want: 404},

	"GET /v1/pools":             {want: 200},
	"POST /v1/pools":            {want: 201, bodies: []hostileBody{{name: "own pool", json: func(*hostileWorld) string { return `{"name":"b"}` }}}},
	"GET /v1/pools/:id":         {params: []objKind{kindPool}, want: 404},
	"GET /v1/pools/:id/plan":    {params: []objKind{kindPool}, want: 404},
	"POST /v1/pools/:id/plan":   {params: []objKind{kindPool}, want: 404, bodies: []hostileBody{{name: "grow", json: func(*hostileWorld) string { return `{"max_replicas":100}` }}}},
	"PATCH /v1/pools/:id":       {params: []objKind{kindPool}, want: 404, bodies: []hostileBody{{name: "grow", json: func(*hostileWorld) string { return `{"max_replicas":100}` }}}},
	"POST /v1/pools/:id/pause":  {params: []objKind{kindPool}, want: 404},
	"POST /v1/pools/:id/resume": {params: []objKind{kindPool}, want: 404},
	"DELETE /v1/pools/:id":      {params: []objKind{kindPool}, want: 404},

	"GET /v1/workers":            {want: 200, platform: true},
	"POST /v1/workers/:id/drain": {params: []objKind{kindWorker}, want: 404, platform: true},
	"POST /v1/workers/:id/evict": {params: []objKind{kindWorker}, want: 404, platform: true},

	"GET /v1/admin/organizations":              {want: 200, platform: true},
	"POST /v1/admin/organizations/:id/suspend": {params: []objKind{kindOrg}, want: 404, platform: true},
	"PATCH /v1/admin/organizations/:id": {params: []objKind{kindOrg}, want: 404, platform: true,
		bodies: []hostileBody{{name: "weight", json: fixed(`{"share_weight":100}`)}}},
	"POST /v1/admin/organizations/:id/reinstate":     {params: []objKind{kindOrg}, want: 404, platform: true},
	"GET /v1/admin/organizations/:id/storage-grants": {params: []objKind{kindOrg}, want: 404, platform: true},
	"POST /v1/admin/organizations/:id/storage-grants": {params: []objKind{kindOrg}, want: 404, platform: true,
		bodies: []hostileBody{{name: "grant", json: fixed(`{"bucket":"b-bucket"}`)}}},
	"DELETE /v1/admin/organizations/:id/storage-grants/:grant_id": {params: []objKind{kindOrg, kindGrant}, want: 404, platform: true},
	// One platform-wide document: no tenant's object to reach. B's
	// SuperAdmin may read and replace it (with one that keeps every pool
	// allowed, so the other cases still run).
	"GET /v1/platform/policy": {want: 200, platform: true},
	"PUT /v1/platform/policy": {want: 200, platform: true, bodies: []hostileBody{{name: "replace", json: fixed(unrestrictedPolicyJSON)}}},
}

// idForm is one way to write an id in a path segment (already escaped as
// sent on the wire).
type idForm struct {
	name string
	of   func(id string) string
	// uuidOnly forms only mean something for UUIDs.
	uuidOnly bool
	// want, when set, is the answer whatever the route and role: the
	// request never reaches the route.
	want int
	// onWire forms go over a real connection: app.Test cannot carry them.
	onWire bool
}

// idForms are the ways B writes A's ids. Every one must answer like the
// plain id: 403 for a role the route does not admit, else 404.
var idForms = []idForm{
	{name: "other org's id", of: func(id string) string { return id }},
	{name: "upper-case", of: strings.ToUpper},
	{name: "braced", uuidOnly: true, of: func(id string) string { return "%7B" + id + "%7D" }},
	{name: "urn", uuidOnly: true, of: func(id string) string { return "urn:uuid:" + id }},
	{name: "without dashes", uuidOnly: true, of: func(id string) string { return strings.ReplaceAll(id, "-", "") }},
	{name: "leading space", of: func(id string) string { return "%20" + id }},
	{name: "trailing space", of: func(id string) string { return id + "%20" }},
	{name: "tab and newline", of: func(id string) string { return "%09" + id + "%0A" }},
	{name: "plus", of: func(id string) string { return "+" + id }},
	{name: "every byte percent-encoded", of: func(id string) string {
		var b strings.Builder
		for i := range len(id) {
			fmt.Fprintf(&b, "%%%02X", id[i])
		}
		return b.String()
	}},
	{name: "NUL suffix", of: func(id string) string { return id + "%00" }},
	{name: "encoded traversal before", of: func(id string) string { return "..%2F" + id }},
	{name: "encoded traversal after", of: func(id string) string { return id + "%2F..%2F.." }},
	{name: "double-encoded traversal", of: func(id string) string { return "%252E%252E%252F" + id }},
	{name: "backslash traversal", of: func(id string) string { return "..%5C" + id }},
	{name: "dot-dot segment", of: func(id string) string { return "../" + id }, want: http.StatusNotFound},
	{name: "matrix parameter", of: func(id string) string { return id + ";org=b" }},
	{name: "malformed", of: func(string) string { return "not-an-id" }},
	{name: "nil uuid", of: func(string) string { return "00000000-0000-0000-0000-000000000000" }},
	{name: "sql injection", of: func(id string) string { return id + "%27%20OR%20%271%27%3D%271" }},
	{name: "very long", of: func(id string) string { return id + strings.Repeat("0", 2000) }},
	{name: "longer than a request line may be", of: func(id string) string { return id + strings.Repeat("0", 8<<10) }, want: http.StatusRequestHeaderFieldsTooLarge, onWire: true},
}

// hostileWorld is org A with one object of every kind, org B with its own
// and a key of every role, and everything of A's that B must never see.
type hostileWorld struct {
	// t is the test or subtest running now, for bodies that call the API.
	t       *testing.T
	f       *fixture
	a, b    map[objKind]string
	keysB   map[auth.Role]string
	prefixA string // s3:// prefix under A's root holding objects
	prefixB string
	// manifestB is a manifest asset of B's listing one of B's objects.
	manifestB string
	cursorA   string // a page cursor of A's job list
	inviteA   string // the token of A's invitation (kindInvite)
	secretsA  []string
	seq       int
}

func (w *hostileWorld) next() int { w.seq++; return w.seq }

const hostileSpec = `{"packaging":"mp4","renditions":[{"codec":"h264","height":360,"bitrate_kbps":800}]}`

// tenantObjects creates one object of every kind in org, through the API
// with key, and returns their ids. tag makes every name and text of the
// organization unique, so a leak can be found by searching for it.
func (f *fixture) tenantObjects(t *testing.T, org store.Organization, key, tag string) (ids map[objKind]string, prefix, invitation string) {
	t.Helper()
	ctx := t.Context()
	ids = map[objKind]string{kindOrg: org.ID.String()}
	var pool apiv1.Pool
	f.mustDo(t, 201, "POST", "/v1/pools", key, map[string]any{"name": "pool-" + tag}, &pool)
	ids[kindPool] = pool.ID
	var wf apiv1.Workflow
	f.mustDo(t, 201, "POST", "/v1/workflows", key, map[string]any{"name": "workflow-" + tag, "description": "description-" + tag, "spec": json.RawMessage(hostileSpec)}, &wf)
	ids[kindWorkflow] = wf.ID
	var asset apiv1.Asset
	f.mustDo(t, 201, "POST", "/v1/assets", key, map[string]any{"filename": "asset-" + tag + ".mp4", "content_type": "video/mp4", "size_bytes": 1}, &asset)
	ids[kindAsset] = asset.ID
	var upload apiv1.Asset
	f.mustDo(t, 201, "POST", "/v1/assets", key, map[string]any{"filename": "upload-" + tag + ".mov", "size_bytes": testUploads.MultipartThreshold + 1}, &upload)
	require.NotNil(t, upload.Multipart)
	ids[kindUpload] = upload.ID
	var hook apiv1.WebhookCreated
	f.mustDo(t, 201, "POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks-" + tag + ".example.com/h", "description": "hook-" + tag, "events": []string{"job.queued", "job.completed"}}, &hook)
	ids[kindWebhook] = hook.ID
	var job apiv1.Job
	body := fmt.Sprintf(`{"input":{"asset_id":%q},"workflow_id":%q,"pool":%q,"metadata":{"note":"metadata-%s"}}`, asset.ID, wf.ID, pool.ID, tag)
	r := f.raw(t, "POST", "/v1/jobs", key, []byte(body), map[string]string{"Idempotency-Key": "idem-" + tag})
	require.Equal(t, 201, r.Status, "%s", r.Body)
	r.json(t, &job)
	ids[kindJob] = job.ID
	var deliveries apiv1.Page[apiv1.WebhookDelivery]
	f.mustDo(t, 200, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", key, nil, &deliveries)
	require.NotEmpty(t, deliveries.Items)
	ids[kindDelivery] = deliveries.Items[0].ID

	// A finished job with an output, run by a worker of the pool.
	done := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "https://media-" + tag + ".example.com/in.mp4"}, "workflow": "mp4-720p", "pool": pool.ID})
	ids[kindFinished] = done.ID
	worker := "pod-" + tag
	_, err := f.store.RegisterWorker(ctx, store.Worker{ID: worker, PoolID: pool.ID, Lane: apiv1.LaneLive}, time.Now())
	require.NoError(t, err)
	ids[kindWorker] = worker
	tok := []byte("claim-" + tag)
	_, err = f.store.ClaimJob(ctx, uuid.MustParse(done.ID), pool.ID, apiv1.LaneLive, worker, tok, time.Now(), time.Now().Add(time.Minute))
	require.NoError(t, err)
	outputs := fmt.Sprintf(`[{"name":"output-%s.mp4","kind":"video","size_bytes":1,"content_type":"video/mp4","key":"orgs/%s/jobs/%s/outputs/output-%s.mp4"}]`, tag, org.ID, done.ID, tag)
	_, err = f.store.CompleteJob(ctx, uuid.MustParse(done.ID), pool.ID, tok, json.RawMessage(outputs), store.Usage{EncodeSeconds: 1}, time.Now())
	require.NoError(t, err)

	// An encrypted job whose first claim made its key.
	enc := f.submitJob(t, key, map[string]any{"input": map[string]any{"url": "https://media-" + tag + ".example.com/in.mp4"}, "spec": json.RawMessage(encryptedSpec), "pool": pool.ID})
	ids[kindEncrypted] = enc.ID
	ck, err := contentkey.New()
	require.NoError(t, err)
	sealer, err := contentkey.NewSealer(fixtureSecret)
	require.NoError(t, err)
	sealed, err := sealer.Seal(uuid.MustParse(enc.ID), ck.Value)
	require.NoError(t, err)
	_, err = f.store.EnsureContentKey(ctx, store.ContentKey{JobID: uuid.MustParse(enc.ID), OrgID: org.ID, KID: ck.ID, SealedKey: sealed})
	require.NoError(t, err)
	ids[kindContentKey] = ck.JWK().Kid

	// A batch over a prefix of the organization's root.
	root := "orgs/" + org.ID.String() + "/library-" + tag + "/"
	require.NoError(t, f.objects.Put(ctx, root+"in.mp4", strings.NewReader("x")))
	prefix = "s3://" + f.objects.Bucket() + "/" + root
	var b apiv1.Batch
	f.mustDo(t, 201, "POST", "/v1/batches", key, map[string]any{"key": "batch-" + tag, "workflow": "mp4-720p", "source": map[string]any{"prefix": prefix}}, &b)
	ids[kindBatch] = b.ID

	var m apiv1.Member
	f.mustDo(t, 201, "POST", "/v1/members", key, map[string]any{"email": "member-" + tag + "@" + tag + ".example", "name": "Member " + tag, "role": "viewer"}, &m)
	ids[kindMember] = m.UserID
	var k apiv1.APIKeyCreated
	f.mustDo(t, 201, "POST", "/v1/api-keys", key, map[string]any{"name": "key-" + tag}, &k)
	ids[kindKey] = k.ID
	var mk apiv1.APIKeyCreated
	f.mustDo(t, 201, "POST", "/v1/members/"+m.UserID+"/api-keys", key, map[string]any{"name": "member-key-" + tag}, &mk)
	ids[kindMemberKey] = mk.ID
	var inv apiv1.InvitationCreated
	f.mustDo(t, 201, "POST", "/v1/members/"+m.UserID+"/invitations", key, map[string]any{}, &inv)
	ids[kindInvite] = inv.ID
	return ids, prefix, inv.Token
}

func newHostileWorld(t *testing.T) *hostileWorld {
	t.Helper()
	f := newFixture(t)
	ctx := t.Context()
	w := &hostileWorld{f: f, keysB: map[auth.Role]string{auth.Owner: f.keyB}}
	for _, role := range auth.Roles {
		if role == auth.Owner {
			continue
		}
		m, err := f.store.AddMember(ctx, f.orgB.ID, string(role)+"@b.example", "", role)
		require.NoError(t, err)
		key, _, err := f.store.CreateKey(ctx, f.orgB.ID, m.UserID, "b", nil)
		require.NoError(t, err)
		w.keysB[role] = key
	}
	keyA := f.keys[auth.Owner]
	w.a, w.prefixA, w.inviteA = f.tenantObjects(t, f.orgA, keyA, "secret-a")
	w.b, w.prefixB, _ = f.tenantObjects(t, f.orgB, f.keyB, "own-b")
	// A storage grant of each organization, made by the platform (A's
	// SuperAdmin member stands for it).
	for _, o := range []struct {
		org  store.Organization
		ids  map[objKind]string
		name string
	}{{f.orgA, w.a, "grant-secret-a"}, {f.orgB, w.b, "grant-own-b"}} {
		var g apiv1.StorageGrant
		f.mustDo(t, 201, "POST", "/v1/admin/organizations/"+o.org.ID.String()+"/storage-grants", f.keys[auth.SuperAdmin],
			map[string]any{"bucket": o.name}, &g)
		o.ids[kindGrant] = g.ID
	}
	f.mustDo(t, 200, "PATCH", "/v1/organization", keyA, map[string]any{"name": "org-secret-a"}, nil)
	f.mustDo(t, 200, "PATCH", "/v1/organization/billing", keyA, map[string]any{"billing_email": "billing@secret-a.example", "billing_name": "billing-secret-a"}, nil)
	var page apiv1.Page[apiv1.Job]
	f.mustDo(t, 200, "GET", "/v1/jobs?limit=1", keyA, nil, &page)
	require.NotEmpty(t, page.NextCursor)
	w.cursorA = page.NextCursor

	// Everything of A's: its ids, its members' ids and emails, its keys,
	// the webhook's signing secret, and every text it wrote (all tagged).
	w.secretsA = append(w.secretsA, "secret-a", f.orgA.ID.String())
	for _, id := range w.a {
		w.secretsA = append(w.secretsA, id)
	}
	members, err := f.store.ListMembers(ctx, f.orgA.ID)
	require.NoError(t, err)
	for _, m := range members {
		w.secretsA = append(w.secretsA, m.UserID.String(), m.Email)
		keys, err := f.store.ListKeys(ctx, f.orgA.ID, m.UserID)
		require.NoError(t, err)
		for _, k := range keys {
			w.secretsA = append(w.secretsA, k.ID.String(), k.Prefix)
		}
	}
	for _, k := range f.keys {
		w.secretsA = append(w.secretsA, k)
	}
	hook, err := f.store.GetWebhook(ctx, f.orgA.ID, uuid.MustParse(w.a[kindWebhook]))
	require.NoError(t, err)
	w.secretsA = append(w.secretsA, hook.Secret, w.inviteA)
	delivery, err := f.store.GetDelivery(ctx, f.orgA.ID, hook.ID, uuid.MustParse(w.a[kindDelivery]))
	require.NoError(t, err)
	w.secretsA = append(w.secretsA, delivery.EventID)
	ck, err := f.store.ContentKey(ctx, f.orgA.ID, uuid.MustParse(w.a[kindEncrypted]))
	require.NoError(t, err)
	sealer, err := contentkey.NewSealer(fixtureSecret)
	require.NoError(t, err)
	value, err := sealer.Open(ck.JobID, ck.SealedKey)
	require.NoError(t, err)
	w.secretsA = append(w.secretsA, string(value), base64.RawURLEncoding.EncodeToString(value), base64.StdEncoding.EncodeToString(value), hex.EncodeToString(value))
	return w
}

// leaks returns A's secrets found in a response to B, leaving out those
// B sent itself (an echoed path is B's own input, not A's data).
func (w *hostileWorld) leaks(sent string, r response) []string {
	if dec, err := url.PathUnescape(sent); err == nil {
		sent += " " + dec
	}
	sent = strings.ToLower(sent)
	var hay strings.Builder
	hay.Write(r.Body)
	for k, vs := range r.Header {
		hay.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	got := strings.ToLower(hay.String())
	var out []string
	for _, s := range w.secretsA {
		if !strings.Contains(sent, strings.ToLower(s)) && strings.Contains(got, strings.ToLower(s)) {
			out = append(out, s)
		}
	}
	return out
}

// tenantState is everything of an organization's: every row of every table
// with an org_id column (found at run time, so a new table is covered),
// the organization, its members' users, its pools' workers, its objects in
// storage and its pools' queues.
func (f *fixture) tenantState(t *testing.T, org uuid.UUID) map[string]string {
	t.Helper()
	ctx := t.Context()
	rows, err := f.db.Query(ctx, `SELECT table_name FROM information_schema.columns
		WHERE column_name = 'org_id' AND table_schema = current_schema() ORDER BY table_name`)
	require.NoError(t, err)
	tables, err := collectStrings(rows)
	require.NoError(t, err)
	require.Contains(t, tables, "jobs")
	queries := map[string]string{
		"organizations": `SELECT to_jsonb(t) FROM organizations t WHERE id = $1`,
		"users":         `SELECT to_jsonb(u) FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.org_id = $1`,
		"workers":       `SELECT to_jsonb(w) FROM workers w JOIN worker_pools p ON p.id = w.pool_id WHERE p.org_id = $1`,
	}
	for _, table := range tables {
		queries[table] = `SELECT to_jsonb(t) FROM "` + table + `" t WHERE org_id = $1`
	}
	state := map[string]string{}
	for name, q := range queries {
		var doc string
		require.NoError(t, f.db.QueryRow(ctx, `SELECT COALESCE(jsonb_agg(d ORDER BY d::text), '[]')::text FROM (`+q+`) AS s(d)`, org).Scan(&doc))
		state[name] = doc
	}
	keys, _, err := f.objects.ListPage(ctx, f.objects.Bucket(), "orgs/"+org.String()+"/", "", 1000)
	require.NoError(t, err)
	state["objects"] = strings.Join(keys, "\n")
	pools, err := f.store.ListPools(ctx, store.PoolScope{OrgID: org})
	require.NoError(t, err)
	for _, p := range pools {
		for _, lane := range []string{apiv1.LaneLive, apiv1.LaneBackfill} {
			n, err := f.queue.Len(ctx, p.ID, lane)
			require.NoError(t, err)
			state["queue "+p.ID+" "+lane] = fmt.Sprint(n)
		}
		paused, err := f.queue.Paused(ctx, p.ID)
		require.NoError(t, err)
		state["paused "+p.ID] = fmt.Sprint(paused)
	}
	return state
}

type stringRows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}

func collectStrings(rows stringRows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// pathParams lists the :params of a Fiber path.
func pathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

// fillPath puts values into the :params of p, in order.
func fillPath(p string, values []string) string {
	segs := strings.Split(p, "/")
	i := 0
	for j, seg := range segs {
		if strings.HasPrefix(seg, ":") {
			segs[j] = values[i]
			i++
		}
	}
	return strings.Join(segs, "/")
}

// registeredRoutes is every method and path the Fiber app serves, as
// "METHOD /path" (HEAD mirrors of GET left out).
func registeredRoutes(f *fixture) []string {
	var out []string
	for _, r := range f.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestHostileTenantRoutesAreAllAttacked: every route the app registers is
// in hostileRoutes with one parameter kind per path parameter, and every
// entry of hostileRoutes is registered.
func TestHostileTenantRoutesAreAllAttacked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	registered := registeredRoutes(f)
	for _, k := range registered {
		hr, ok := hostileRoutes[k]
		if !assert.True(t, ok, "route %s is not attacked by the hostile-tenant suite: add it to hostileRoutes in apiserver/hostile_tenant_test.go (which of A's objects each path parameter names, the answer B must get)", k) {
			continue
		}
		_, path, _ := strings.Cut(k, " ")
		assert.Len(t, hr.params, len(pathParams(path)), "%s: hostileRoutes names one object kind per path parameter", k)
	}
	for k := range hostileRoutes {
		assert.Contains(t, registered, k, "hostileRoutes names %s, which the app does not register", k)
	}
}

// TestHostileTenant: B, at every role, calls every route against A's
// objects, with A's ids written every way idForms knows, and with A's ids
// in bodies, filters and cursors. A role the route does not admit gets 403
// before any lookup; otherwise the answer is the route's (404 for A's
// objects, 422 naming the field for a reference in a body, the route's
// success for B's own collection). No answer is 5xx; no answer carries
// anything of A's; A's rows, objects and queues are unchanged at the end.
func TestHostileTenant(t *testing.T) {
	t.Parallel()
	w := newHostileWorld(t)
	f := w.f
	inv := newInventory(t, "rest")
	perms := map[string]auth.Permission{}
	for _, r := range f.srv.Routes() {
		perms[r.Method+" "+r.Path] = r.Perm
	}
	before := f.tenantState(t, f.orgA.ID)

	wire := f.listen(t)
	check := func(t *testing.T, category, method, target, key string, b hostileBody, want int, field string, onWire bool) {
		t.Helper()
		inv.add(category)
		var body []byte
		if b.json != nil {
			body = []byte(b.json(w))
		}
		var r response
		if onWire {
			r = wire(t, method, target, key)
		} else {
			r = f.raw(t, method, target, key, body, b.header)
		}
		assert.Equal(t, want, r.Status, "%s %s: %s", method, target, r.Body)
		assert.Less(t, r.Status, 500, "5xx: %s", r.Body)
		if r.Status >= 400 {
			p := r.problem(t)
			if want == http.StatusForbidden {
				assert.Equal(t, problemPrefix+"forbidden", p.Type)
			}
			if field != "" {
				assert.Contains(t, r.fields(t), field)
			}
		}
		sent := target + " " + string(body)
		for _, v := range b.header {
			sent += " " + v
		}
		assert.Empty(t, w.leaks(sent, r), "%s %s answers with A's data: %s", method, target, r.Body)
	}

	routes := registeredRoutes(f)
	sentOnce := map[string]bool{}
	platformSkipped := 0
	inv.note("registered routes", len(routes))
	inv.note("roles", len(auth.Roles))
	inv.note("id forms", len(idForms))
	for _, k := range routes {
		hr := hostileRoutes[k] // TestHostileTenantRoutesAreAllAttacked reports a missing one
		method, path, _ := strings.Cut(k, " ")
		switch {
		case hr.elsewhere != "":
			continue
		case hr.public:
			bodies := hr.bodies
			if len(bodies) == 0 {
				bodies = []hostileBody{{name: "no body"}}
			}
			for _, b := range bodies {
				t.Run(k+" "+b.name, func(t *testing.T) {
					check(t, "public routes", method, path, "", b, cmpOr(b.want, hr.want), b.field, false)
				})
			}
			continue
		}
		for _, role := range auth.Roles {
			if hr.platform && role == auth.SuperAdmin {
				platformSkipped++
				continue
			}
			key := w.keysB[role]
			admitted := auth.Allowed(role, perms[k])
			bodies := hr.bodies
			if len(bodies) == 0 {
				bodies = []hostileBody{{name: "no body"}}
			}
			for _, b := range bodies {
				if b.once && admitted {
					if sentOnce[k+" "+b.name] {
						continue
					}
					sentOnce[k+" "+b.name] = true
				}
				want, field := cmpOr(b.want, hr.want), b.field
				category := "collections: B's own view"
				switch {
				case !admitted:
					want, field, category = http.StatusForbidden, "", "role not admitted: 403 before lookup"
				case len(hr.params) > 0:
					category = "other org's object by id: 404"
				case want == http.StatusUnprocessableEntity:
					category = "other org's id in a body: 422"
				case strings.HasPrefix(b.name, "other org's"):
					category = "other org's names and keys reused by B: B's own object"
				}
				query := ""
				if hr.query != nil {
					query = "?" + hr.query(w)
				}
				if len(hr.params) == 0 {
					t.Run(k+" as "+string(role)+" "+b.name, func(t *testing.T) {
						check(t, category, method, path+query, key, b, want, field, false)
					})
					continue
				}
				for pos, kind := range hr.params {
					owners := []string{"A"}
					if len(hr.params) > 1 {
						owners = append(owners, "B")
					}
					for _, owner := range owners {
						for _, form := range idForms {
							if form.uuidOnly && !uuidKinds[kind] {
								continue
							}
							values := make([]string, len(hr.params))
							for i, pk := range hr.params {
								values[i] = w.a[pk]
								if owner == "B" {
									values[i] = w.b[pk]
								}
							}
							values[pos] = form.of(w.a[kind])
							want, category := want, category
							if form.want != 0 {
								want, category = form.want, "id forms refused before routing (no route: 404; request line too long: 431)"
							}
							name := fmt.Sprintf("%s as %s, %s of A %s (others %s's)", k, role, string(kind), form.name, owner)
							t.Run(name, func(t *testing.T) {
								check(t, category, method, fillPath(path, values)+query, key, b, want, field, form.onWire)
							})
						}
					}
				}
			}
		}
	}

	inv.note("platform routes not sent as B's SuperAdmin (cross-organization by design)", platformSkipped)
	after := f.tenantState(t, f.orgA.ID)
	assert.Empty(t, cmp.Diff(before, after), "org A changed under org B's requests")
	// And A still works with its objects.
	f.mustDo(t, 200, "GET", "/v1/jobs/"+w.a[kindJob], f.keys[auth.Viewer], nil, nil)
	f.mustDo(t, 200, "GET", "/v1/pools/"+w.a[kindPool], f.keys[auth.Viewer], nil, nil)
}

// TestHostileTenantWebSocket: B's live-event stream, at every role, with
// A's job among the ids it asks for (written several ways) or with none,
// delivers only B's own events. A's events are published first, then a
// marker event of B's that each client's filter admits; the marker must be
// the first thing every client reads.
func TestHostileTenantWebSocket(t *testing.T) {
	t.Parallel()
	w := newHostileWorld(t)
	f := w.f
	inv := newInventory(t, "rest")
	rep := f.replica(t)
	jobA, jobB := uuid.MustParse(w.a[kindJob]), uuid.MustParse(w.b[kindJob])
	queries := []string{
		"",
		"?jobs=" + jobA.String(),
		"?jobs=" + jobA.String() + "," + jobB.String(),
		"?jobs=" + strings.ToUpper(jobA.String()) + ",%20" + jobA.String(),
		"?jobs=" + jobA.String() + "&jobs=" + jobB.String(),
	}
	type client struct {
		name string
		conn interface {
			ReadMessage() (int, []byte, error)
			SetReadDeadline(time.Time) error
		}
	}
	var clients []client
	for _, role := range auth.Roles {
		for _, q := range queries {
			conn, _, err := dialWS(t, rep.addr, w.keysB[role], q)
			require.NoError(t, err, "%s %s", role, q)
			t.Cleanup(func() { conn.Close() })
			clients = append(clients, client{name: string(role) + " " + q, conn: conn})
		}
	}
	waitSubscribers(t, rep.hub, len(clients))
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, rep.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgA.ID, JobID: &jobA, PoolID: w.a[kindPool], Data: map[string]any{"note": "secret-a", "i": i}}))
	}
	// B's markers: one of B's job, one of B's organization that names A's
	// job id (B may see its own events whatever job id they carry), so
	// that every filter above admits a marker.
	require.NoError(t, rep.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgB.ID, JobID: &jobB, Data: map[string]any{"marker": true}}))
	require.NoError(t, rep.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgB.ID, JobID: &jobA, Data: map[string]any{"marker": true}}))
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			inv.add("WebSocket subscriptions")
			require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, msg, err := c.conn.ReadMessage()
			require.NoError(t, err)
			var e events.Event
			require.NoError(t, json.Unmarshal(msg, &e))
			assert.Equal(t, true, e.Data["marker"], "the first event B reads is its own marker: %s", msg)
			assert.Equal(t, f.orgB.ID, *e.OrgID)
			assert.NotContains(t, string(msg), "secret-a")
		})
	}
}

// listen serves the fixture's app on a loopback port until the test ends
// and returns a function that sends one request over a fresh connection,
// byte for byte, for requests app.Test cannot carry.
func (f *fixture) listen(t *testing.T) func(t *testing.T, method, target, key string) response {
	t.Helper()
	addr := f.serve(t)
	return func(t *testing.T, method, target, key string) response {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", method, target, key)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// inventory counts the cases of one suite by category and logs them, at
// the end of the test, in the table format of docs/security.md.
type inventory struct {
	t      *testing.T
	suite  string
	order  []string
	counts map[string]int
	notes  []string
}

func newInventory(t *testing.T, suite string) *inventory {
	inv := &inventory{t: t, suite: suite, counts: map[string]int{}}
	t.Cleanup(inv.log)
	return inv
}

// add counts one case of category.
func (inv *inventory) add(category string) {
	if _, ok := inv.counts[category]; !ok {
		inv.order = append(inv.order, category)
	}
	inv.counts[category]++
}

// note records a size of the suite that is not a case count.
func (inv *inventory) note(what string, n int) {
	inv.notes = append(inv.notes, fmt.Sprintf("hostile inventory | %s | %s | %d |", inv.suite, what, n))
}

func (inv *inventory) log() {
	for _, n := range inv.notes {
		inv.t.Log(n)
	}
	total := 0
	for _, c := range inv.order {
		inv.t.Logf("hostile inventory | %s | %s | %d |", inv.suite, c, inv.counts[c])
		total += inv.counts[c]
	}
	if total > 0 {
		inv.t.Logf("hostile inventory | %s | %s cases | %d |", inv.suite, inv.t.Name(), total)
	}
}
