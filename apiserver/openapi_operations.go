package apiserver

import (
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// operationDoc is what the OpenAPI document says about one route beyond the
// route table: a stable operationId (the method name generated clients get)
// and the query parameters the handler reads. It lives apart from routes.go
// so the route table can change shape without touching it;
// TestOpenAPIOperationsMatchRoutes fails when a route has no entry here, an
// entry names no route, or an id is not a unique lowerCamelCase identifier.
type operationDoc struct {
	ID    string
	Query []queryParam
	// Also are further success statuses that answer the route's response
	// body, with what each means.
	Also map[int]string
}

// queryParam is one query parameter a handler reads (grep c.Query and the
// decode.go helpers when adding one).
type queryParam struct {
	Name        string
	Description string
	Schema      map[string]any
}

// pageQuery are the parameters pageParams reads.
var pageQuery = []queryParam{
	{Name: "limit", Description: "page size (default 50)", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 200}},
	{Name: "cursor", Description: "next_cursor of the previous page; absent for the first page", Schema: map[string]any{"type": "string"}},
}

func withPage(params ...queryParam) []queryParam {
	return append(params, pageQuery...)
}

// operations is keyed by "METHOD /path" in Fiber syntax, as the route table
// spells it.
var operations = map[string]operationDoc{
	// Unauthenticated endpoints registered outside the route table.
	"GET /health":          {ID: "getHealth"},
	"GET /ready":           {ID: "getReadiness"},
	"GET /v1/openapi.json": {ID: "getOpenAPIDocument"},

	"POST /v1/invitations/redeem": {ID: "redeemInvitation"},
	"POST /v1/console/session":    {ID: "consoleSignIn"},
	"DELETE /v1/console/session":  {ID: "consoleSignOut"},
	"GET /v1/console/session":     {ID: "consoleSession"},
	"GET /v1/jobs/:id/files/*":    {ID: "getJobFile", Also: map[int]string{206: "Partial content: the byte range the Range header asked for"}},

	"POST /v1/jobs": {ID: "createJob", Also: map[int]string{
		200: "An earlier request with the same Idempotency-Key created this job; nothing new was queued",
	}},
	"GET /v1/jobs": {ID: "listJobs", Query: withPage(
		queryParam{Name: "status", Description: "only jobs in this status", Schema: map[string]any{"type": "string", "enum": apiv1.JobStatuses}},
		queryParam{Name: "pool", Description: "only jobs submitted to this pool id", Schema: map[string]any{"type": "string"}},
		queryParam{Name: "lane", Description: "only jobs of this lane", Schema: map[string]any{"type": "string", "enum": []string{apiv1.LaneLive, apiv1.LaneBackfill}}},
		queryParam{Name: "batch", Description: "only jobs of this batch (its id)", Schema: map[string]any{"type": "string", "format": "uuid"}},
		queryParam{Name: "created_after", Description: "only jobs created at or after this RFC 3339 time", Schema: map[string]any{"type": "string", "format": "date-time"}},
		queryParam{Name: "created_before", Description: "only jobs created before this RFC 3339 time", Schema: map[string]any{"type": "string", "format": "date-time"}},
	)},
	"GET /v1/jobs/:id":         {ID: "getJob"},
	"POST /v1/jobs/:id/cancel": {ID: "cancelJob"},
	"GET /v1/jobs/:id/events": {ID: "listJobEvents", Query: []queryParam{
		{Name: "since", Description: "only events with a sequence number greater than this (default 0: from the start)", Schema: map[string]any{"type": "integer", "minimum": 0}},
		{Name: "limit", Description: "at most this many events (default 100)", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 200}},
	}},
	"GET /v1/jobs/:id/outputs":   {ID: "listJobOutputs"},
	"GET /v1/jobs/:id/key":       {ID: "getJobContentKey"},
	"POST /v1/jobs/:id/clearkey": {ID: "getJobClearKeyLicense"},

	"POST /v1/batches": {ID: "createBatch", Also: map[int]string{
		200: "The same batch was submitted before: it resumes, nothing is submitted twice",
	}},
	"GET /v1/batches":                   {ID: "listBatches", Query: pageQuery},
	"GET /v1/batches/:id":               {ID: "getBatch"},
	"POST /v1/batches/:id/cancel":       {ID: "cancelBatch"},
	"POST /v1/batches/:id/retry-failed": {ID: "retryFailedBatch"},

	"GET /ws": {ID: "watchJobEvents", Query: []queryParam{
		{Name: "jobs", Description: "comma-separated job ids (at most 1000): only their events; absent, every job of the organization", Schema: map[string]any{"type": "string"}},
		{Name: "api_key", Description: "the API key, for browsers, which cannot set an Authorization header on a WebSocket; read only when no Authorization header is sent", Schema: map[string]any{"type": "string"}},
	}},

	"POST /v1/workflows":       {ID: "createWorkflow"},
	"GET /v1/workflows":        {ID: "listWorkflows", Query: pageQuery},
	"GET /v1/workflows/:id":    {ID: "getWorkflow"},
	"PATCH /v1/workflows/:id":  {ID: "updateWorkflow"},
	"DELETE /v1/workflows/:id": {ID: "deleteWorkflow"},

	"POST /v1/assets":                  {ID: "createAsset"},
	"GET /v1/assets":                   {ID: "listAssets", Query: pageQuery},
	"GET /v1/assets/:id":               {ID: "getAsset"},
	"DELETE /v1/assets/:id":            {ID: "deleteAsset"},
	"POST /v1/assets/:id/upload/parts": {ID: "presignUploadParts"},
	"GET /v1/assets/:id/upload/parts": {ID: "listUploadedParts", Query: []queryParam{
		{Name: "limit", Description: "page size (default and most 1000)", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": apiv1.MaxListParts}},
		{Name: "cursor", Description: "next_cursor of the previous page (a part number); absent for the first page", Schema: map[string]any{"type": "string"}},
	}},
	"POST /v1/assets/:id/upload/complete": {ID: "completeUpload"},
	"DELETE /v1/assets/:id/upload":        {ID: "abortUpload"},

	"POST /v1/webhooks":       {ID: "createWebhook"},
	"GET /v1/webhooks":        {ID: "listWebhooks", Query: pageQuery},
	"GET /v1/webhooks/:id":    {ID: "getWebhook"},
	"PATCH /v1/webhooks/:id":  {ID: "updateWebhook"},
	"DELETE /v1/webhooks/:id": {ID: "deleteWebhook"},
	"GET /v1/webhooks/:id/deliveries": {ID: "listWebhookDeliveries", Query: withPage(
		queryParam{Name: "status", Description: "only deliveries in this status", Schema: map[string]any{"type": "string", "enum": apiv1.DeliveryStatuses}},
	)},
	"GET /v1/webhooks/:id/deliveries/:delivery_id":            {ID: "getWebhookDelivery"},
	"POST /v1/webhooks/:id/deliveries/:delivery_id/redeliver": {ID: "redeliverWebhookDelivery"},

	"GET /v1/organization":   {ID: "getOrganization"},
	"PATCH /v1/organization": {ID: "updateOrganization"},
	"GET /v1/organization/usage": {ID: "getUsage", Query: []queryParam{
		{Name: "from", Description: "first UTC day, inclusive (default 30 days before today)", Schema: map[string]any{"type": "string", "format": "date"}},
		{Name: "to", Description: "last UTC day, inclusive, at most 366 days after from (default today)", Schema: map[string]any{"type": "string", "format": "date"}},
	}},
	"GET /v1/organization/billing":   {ID: "getBilling"},
	"PATCH /v1/organization/billing": {ID: "updateBilling"},

	"GET /v1/members":                                   {ID: "listMembers"},
	"POST /v1/members":                                  {ID: "addMember"},
	"PATCH /v1/members/:id":                             {ID: "updateMember"},
	"DELETE /v1/members/:id":                            {ID: "removeMember"},
	"POST /v1/members/:id/api-keys":                     {ID: "issueMemberApiKey"},
	"GET /v1/members/:id/api-keys":                      {ID: "listMemberApiKeys"},
	"DELETE /v1/members/:id/api-keys/:key_id":           {ID: "revokeMemberApiKey"},
	"POST /v1/members/:id/invitations":                  {ID: "createInvitation"},
	"GET /v1/members/:id/invitations":                   {ID: "listInvitations"},
	"DELETE /v1/members/:id/invitations/:invitation_id": {ID: "revokeInvitation"},

	"GET /v1/api-keys":        {ID: "listApiKeys"},
	"POST /v1/api-keys":       {ID: "createApiKey"},
	"DELETE /v1/api-keys/:id": {ID: "revokeApiKey"},

	"GET /v1/pools":             {ID: "listPools"},
	"POST /v1/pools":            {ID: "createPool"},
	"GET /v1/pools/:id":         {ID: "getPool"},
	"GET /v1/pools/:id/plan":    {ID: "getPoolPlan"},
	"POST /v1/pools/:id/plan":   {ID: "previewPoolPlan"},
	"PATCH /v1/pools/:id":       {ID: "updatePool"},
	"POST /v1/pools/:id/pause":  {ID: "pausePool"},
	"POST /v1/pools/:id/resume": {ID: "resumePool"},
	"DELETE /v1/pools/:id":      {ID: "deletePool"},

	"GET /v1/workers":            {ID: "listWorkers"},
	"POST /v1/workers/:id/drain": {ID: "drainWorker"},
	"POST /v1/workers/:id/evict": {ID: "evictWorker"},

	"GET /v1/platform/policy":                                     {ID: "getPlatformPolicy"},
	"PUT /v1/platform/policy":                                     {ID: "putPlatformPolicy"},
	"GET /v1/admin/organizations":                                 {ID: "listOrganizations", Query: pageQuery},
	"PATCH /v1/admin/organizations/:id":                           {ID: "updateOrganizationSettings"},
	"POST /v1/admin/organizations/:id/suspend":                    {ID: "suspendOrganization"},
	"POST /v1/admin/organizations/:id/reinstate":                  {ID: "reinstateOrganization"},
	"GET /v1/admin/organizations/:id/storage-grants":              {ID: "listStorageGrants"},
	"POST /v1/admin/organizations/:id/storage-grants":             {ID: "createStorageGrant"},
	"DELETE /v1/admin/organizations/:id/storage-grants/:grant_id": {ID: "deleteStorageGrant"},
}
