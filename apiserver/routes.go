package apiserver

import (
	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// Route is one authenticated endpoint: its permission, its documentation and
// its handler. The server registers, authorizes and documents exactly these,
// and the RBAC tests walk the same list, so a new route cannot skip a check.
type Route struct {
	Method   string
	Path     string // Fiber syntax: /v1/jobs/:id
	Perm     auth.Permission
	Summary  string
	Tag      string
	Body     any // zero value of the request body type, nil if none
	Response any // zero value of the success body type, nil if none
	Status   int // success status (200 when zero)
	// Raw is the content type of a success body that is not JSON (then
	// Response is nil).
	Raw     string
	handler fiber.Handler
}

// Routes lists the authenticated routes, for tests and tooling.
func (s *Server) Routes() []Route { return s.routes() }

// publicRoutes are the routes that take no API key because the request
// carries its own credential; Perm is empty and authorize never runs. The
// RBAC tests list them by hand, so adding one is a visible decision.
func (s *Server) publicRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/v1/invitations/redeem", Tag: "members", Status: 201,
			Summary: "Exchange an invitation token, once, for an API key of the invited member (no API key needed)", Body: apiv1.RedeemInvitationRequest{}, Response: apiv1.APIKeyCreated{}, handler: s.redeemInvitation},
		{Method: "POST", Path: "/v1/console/session", Tag: "console", Status: 201,
			Summary: "Sign the web console in with an API key: sets an HttpOnly session cookie and a CSRF cookie (the browser keeps no key)", Body: apiv1.ConsoleSignIn{}, Response: apiv1.ConsoleSession{}, handler: s.signIn},
		{Method: "DELETE", Path: "/v1/console/session", Tag: "console", Status: 204,
			Summary: "Sign the web console out: ends the session and clears its cookies", handler: s.signOut},
	}
}

func (s *Server) routes() []Route {
	return []Route{
		// Jobs
		{Method: "POST", Path: "/v1/jobs", Perm: auth.JobWrite, Tag: "jobs", Status: 201,
			Summary: "Submit a job (an Idempotency-Key header makes retries safe)", Body: apiv1.JobRequest{}, Response: apiv1.Job{}, handler: s.createJob},
		{Method: "GET", Path: "/v1/jobs", Perm: auth.JobRead, Tag: "jobs",
			Summary: "List jobs, newest first (filters: status, pool, lane, batch, created_after, created_before; limit, cursor)", Response: apiv1.Page[apiv1.Job]{}, handler: s.listJobs},
		{Method: "GET", Path: "/v1/jobs/:id", Perm: auth.JobRead, Tag: "jobs", Summary: "Get a job", Response: apiv1.Job{}, handler: s.getJob},
		{Method: "POST", Path: "/v1/jobs/:id/cancel", Perm: auth.JobWrite, Tag: "jobs", Summary: "Cancel a job that has not finished", Response: apiv1.Job{}, handler: s.cancelJob},
		{Method: "GET", Path: "/v1/jobs/:id/events", Perm: auth.JobRead, Tag: "jobs", Summary: "A job's history (since, limit)", Response: apiv1.Page[apiv1.JobEvent]{}, handler: s.jobEvents},
		{Method: "GET", Path: "/v1/jobs/:id/outputs", Perm: auth.JobRead, Tag: "jobs", Summary: "A job's output files with presigned download URLs", Response: apiv1.Page[apiv1.Output]{}, handler: s.jobOutputs},
		{Method: "GET", Path: "/v1/jobs/:id/files/*", Perm: auth.JobRead, Tag: "jobs", Raw: "application/octet-stream",
			Summary: "One output file of a job, by its name (byte ranges honoured): what the web console plays and shows", handler: s.jobFile},
		{Method: "GET", Path: "/v1/jobs/:id/key", Perm: auth.JobRead, Tag: "jobs", Raw: "application/octet-stream",
			Summary: "The 16-byte content key of an encrypted job (the URI of its HLS playlists' EXT-X-KEY tags)", handler: s.jobKey},
		{Method: "POST", Path: "/v1/jobs/:id/clearkey", Perm: auth.JobRead, Tag: "jobs", Body: apiv1.ClearKeyRequest{}, Response: apiv1.ClearKeyLicense{},
			Summary: "A W3C ClearKey license for an encrypted job (the license server its MPD names)", handler: s.clearKeyLicense},

		// Batches (backfills): creating and stopping them is Job Create/Cancel.
		{Method: "POST", Path: "/v1/batches", Perm: auth.JobWrite, Tag: "batches", Status: 201,
			Summary: "Submit a batch backfill: a workflow over every input of an S3 prefix or a manifest, on the backfill lane (resubmitting resumes it)", Body: apiv1.BatchRequest{}, Response: apiv1.Batch{}, handler: s.createBatch},
		{Method: "GET", Path: "/v1/batches", Perm: auth.JobRead, Tag: "batches", Summary: "List batches, newest first (limit, cursor)", Response: apiv1.Page[apiv1.BatchSummary]{}, handler: s.listBatches},
		{Method: "GET", Path: "/v1/batches/:id", Perm: auth.JobRead, Tag: "batches", Summary: "Get a batch: counters, status and ETA", Response: apiv1.Batch{}, handler: s.getBatch},
		{Method: "POST", Path: "/v1/batches/:id/cancel", Perm: auth.JobWrite, Tag: "batches", Summary: "Cancel a batch: stop expanding and cancel every job that has not started", Response: apiv1.Batch{}, handler: s.cancelBatch},
		{Method: "POST", Path: "/v1/batches/:id/retry-failed", Perm: auth.JobWrite, Tag: "batches", Summary: "Queue a batch's failed jobs again with a fresh attempt budget", Response: apiv1.Batch{}, handler: s.retryFailedBatch},

		{Method: "GET", Path: "/v1/console/session", Perm: auth.JobRead, Tag: "console", Summary: "Who the console's session (or the API key) acts as", Response: apiv1.ConsoleSession{}, handler: s.whoAmI},

		{Method: "GET", Path: "/ws", Perm: auth.JobRead, Tag: "jobs", Summary: "WebSocket: live job events of your organization (jobs=<id>,<id> narrows them)", handler: s.ws},

		// Workflows
		{Method: "POST", Path: "/v1/workflows", Perm: auth.WorkflowWrite, Tag: "workflows", Status: 201, Summary: "Create a workflow", Body: apiv1.WorkflowRequest{}, Response: apiv1.Workflow{}, handler: s.createWorkflow},
		{Method: "GET", Path: "/v1/workflows", Perm: auth.WorkflowRead, Tag: "workflows", Summary: "List workflows", Response: apiv1.Page[apiv1.Workflow]{}, handler: s.listWorkflows},
		{Method: "GET", Path: "/v1/workflows/:id", Perm: auth.WorkflowRead, Tag: "workflows", Summary: "Get a workflow", Response: apiv1.Workflow{}, handler: s.getWorkflow},
		{Method: "PATCH", Path: "/v1/workflows/:id", Perm: auth.WorkflowWrite, Tag: "workflows", Summary: "Update a workflow", Body: apiv1.WorkflowPatch{}, Response: apiv1.Workflow{}, handler: s.updateWorkflow},
		{Method: "DELETE", Path: "/v1/workflows/:id", Perm: auth.WorkflowWrite, Tag: "workflows", Status: 204, Summary: "Delete a workflow", handler: s.deleteWorkflow},

		// Assets
		{Method: "POST", Path: "/v1/assets", Perm: auth.AssetWrite, Tag: "assets", Status: 201, Summary: "Create an asset and get a presigned upload URL", Body: apiv1.AssetRequest{}, Response: apiv1.Asset{}, handler: s.createAsset},
		{Method: "GET", Path: "/v1/assets", Perm: auth.AssetRead, Tag: "assets", Summary: "List assets", Response: apiv1.Page[apiv1.Asset]{}, handler: s.listAssets},
		{Method: "GET", Path: "/v1/assets/:id", Perm: auth.AssetRead, Tag: "assets", Summary: "Get an asset and a presigned download URL", Response: apiv1.Asset{}, handler: s.getAsset},
		{Method: "DELETE", Path: "/v1/assets/:id", Perm: auth.AssetWrite, Tag: "assets", Status: 204, Summary: "Delete an asset and its object", handler: s.deleteAsset},
		// Multipart uploads of large assets (size_bytes above the server's threshold)
		{Method: "POST", Path: "/v1/assets/:id/upload/parts", Perm: auth.AssetWrite, Tag: "assets",
			Summary: "Presign parts of an asset's multipart upload (up to 100 per request), each bound to its size", Body: apiv1.PresignPartsRequest{}, Response: apiv1.PresignedParts{}, handler: s.presignUploadParts},
		{Method: "GET", Path: "/v1/assets/:id/upload/parts", Perm: auth.AssetWrite, Tag: "assets",
			Summary: "List the parts storage holds of an asset's multipart upload, with their ETags, to resume it (limit up to 1000, cursor)", Response: apiv1.UploadedParts{}, handler: s.listUploadedParts},
		{Method: "POST", Path: "/v1/assets/:id/upload/complete", Perm: auth.AssetWrite, Tag: "assets",
			Summary: "Complete an asset's multipart upload: every part once, in order, with its ETag; checked against storage before the parts are joined", Body: apiv1.CompleteUploadRequest{}, Response: apiv1.Asset{}, handler: s.completeUpload},
		{Method: "DELETE", Path: "/v1/assets/:id/upload", Perm: auth.AssetWrite, Tag: "assets",
			Summary: "Abort an asset's multipart upload and discard its parts (the asset stays, marked aborted)", Response: apiv1.Asset{}, handler: s.abortUpload},

		// Webhooks
		{Method: "POST", Path: "/v1/webhooks", Perm: auth.WebhookManage, Tag: "webhooks", Status: 201, Summary: "Create a webhook (its signing secret is shown once)", Body: apiv1.WebhookRequest{}, Response: apiv1.WebhookCreated{}, handler: s.createWebhook},
		{Method: "GET", Path: "/v1/webhooks", Perm: auth.WebhookManage, Tag: "webhooks", Summary: "List webhooks", Response: apiv1.Page[apiv1.Webhook]{}, handler: s.listWebhooks},
		{Method: "GET", Path: "/v1/webhooks/:id", Perm: auth.WebhookManage, Tag: "webhooks", Summary: "Get a webhook", Response: apiv1.Webhook{}, handler: s.getWebhook},
		{Method: "PATCH", Path: "/v1/webhooks/:id", Perm: auth.WebhookManage, Tag: "webhooks", Summary: "Update a webhook; enabled=true closes its circuit", Body: apiv1.WebhookPatch{}, Response: apiv1.Webhook{}, handler: s.updateWebhook},
		{Method: "DELETE", Path: "/v1/webhooks/:id", Perm: auth.WebhookManage, Tag: "webhooks", Status: 204, Summary: "Delete a webhook", handler: s.deleteWebhook},
		{Method: "GET", Path: "/v1/webhooks/:id/deliveries", Perm: auth.WebhookManage, Tag: "webhooks",
			Summary: "A webhook's delivery log, newest first: status, attempts, status code, latency, error (status filter; limit, cursor)", Response: apiv1.Page[apiv1.WebhookDelivery]{}, handler: s.listDeliveries},
		{Method: "GET", Path: "/v1/webhooks/:id/deliveries/:delivery_id", Perm: auth.WebhookManage, Tag: "webhooks", Summary: "One delivery with its payload", Response: apiv1.WebhookDelivery{}, handler: s.getDelivery},
		{Method: "POST", Path: "/v1/webhooks/:id/deliveries/:delivery_id/redeliver", Perm: auth.WebhookManage, Tag: "webhooks", Status: 202,
			Summary: "Send a delivery again (same event id) with a fresh retry budget", Response: apiv1.WebhookDelivery{}, handler: s.redeliver},

		// Organization
		{Method: "GET", Path: "/v1/organization", Perm: auth.OrgRead, Tag: "organization", Summary: "Get your organization", Response: apiv1.Organization{}, handler: s.getOrg},
		{Method: "PATCH", Path: "/v1/organization", Perm: auth.OrgUpdate, Tag: "organization", Summary: "Rename your organization", Body: apiv1.OrganizationPatch{}, Response: apiv1.Organization{}, handler: s.updateOrg},
		{Method: "GET", Path: "/v1/organization/usage", Perm: auth.OrgRead, Tag: "organization", Summary: "Usage per UTC day: jobs by final status, encode and GPU seconds, output minutes (from, to: YYYY-MM-DD; default the last 30 days)", Response: apiv1.Usage{}, handler: s.usage},
		{Method: "GET", Path: "/v1/organization/billing", Perm: auth.BillingManage, Tag: "organization", Summary: "Plan and billing contact", Response: apiv1.Billing{}, handler: s.getBilling},
		{Method: "PATCH", Path: "/v1/organization/billing", Perm: auth.BillingManage, Tag: "organization", Summary: "Change plan or billing contact", Body: apiv1.BillingPatch{}, Response: apiv1.Billing{}, handler: s.updateBilling},

		// Members
		{Method: "GET", Path: "/v1/members", Perm: auth.OrgRead, Tag: "members", Summary: "List members", Response: apiv1.Page[apiv1.Member]{}, handler: s.listMembers},
		{Method: "POST", Path: "/v1/members", Perm: auth.MembersManage, Tag: "members", Status: 201, Summary: "Add a member", Body: apiv1.MemberRequest{}, Response: apiv1.Member{}, handler: s.addMember},
		{Method: "PATCH", Path: "/v1/members/:id", Perm: auth.MembersManage, Tag: "members", Summary: "Change a member's role or the name your organization gives them", Body: apiv1.MemberPatch{}, Response: apiv1.Member{}, handler: s.updateMember},
		{Method: "DELETE", Path: "/v1/members/:id", Perm: auth.MembersManage, Tag: "members", Status: 204, Summary: "Remove a member", handler: s.removeMember},

		// Credentials an admin hands a member: a key directly, or an
		// invitation the member redeems for one (POST /v1/invitations/redeem).
		{Method: "POST", Path: "/v1/members/:id/api-keys", Perm: auth.MembersManage, Tag: "members", Status: 201,
			Summary: "Issue an API key for a member (shown once), acting at most with the given role (default: the member's)", Body: apiv1.IssueKeyRequest{}, Response: apiv1.APIKeyCreated{}, handler: s.issueMemberKey},
		{Method: "GET", Path: "/v1/members/:id/api-keys", Perm: auth.MembersManage, Tag: "members", Summary: "List a member's API keys", Response: apiv1.Page[apiv1.APIKey]{}, handler: s.listMemberKeys},
		{Method: "DELETE", Path: "/v1/members/:id/api-keys/:key_id", Perm: auth.MembersManage, Tag: "members", Summary: "Revoke a member's API key", Response: apiv1.APIKey{}, handler: s.revokeMemberKey},
		{Method: "POST", Path: "/v1/members/:id/invitations", Perm: auth.MembersManage, Tag: "members", Status: 201,
			Summary: "Invite a member to get an API key: a single-use, expiring token (shown once)", Body: apiv1.InvitationRequest{}, Response: apiv1.InvitationCreated{}, handler: s.createInvitation},
		{Method: "GET", Path: "/v1/members/:id/invitations", Perm: auth.MembersManage, Tag: "members", Summary: "List a member's invitations", Response: apiv1.Page[apiv1.Invitation]{}, handler: s.listInvitations},
		{Method: "DELETE", Path: "/v1/members/:id/invitations/:invitation_id", Perm: auth.MembersManage, Tag: "members", Summary: "Revoke an invitation that has not been redeemed", Response: apiv1.Invitation{}, handler: s.revokeInvitation},

		// API keys (each member manages their own)
		{Method: "GET", Path: "/v1/api-keys", Perm: auth.OrgRead, Tag: "api-keys", Summary: "List your API keys", Response: apiv1.Page[apiv1.APIKey]{}, handler: s.listKeys},
		{Method: "POST", Path: "/v1/api-keys", Perm: auth.OrgRead, Tag: "api-keys", Status: 201, Summary: "Create an API key (shown once)", Body: apiv1.APIKeyRequest{}, Response: apiv1.APIKeyCreated{}, handler: s.createKey},
		{Method: "DELETE", Path: "/v1/api-keys/:id", Perm: auth.OrgRead, Tag: "api-keys", Summary: "Revoke one of your API keys", Response: apiv1.APIKey{}, handler: s.revokeKey},

		// Pools
		{Method: "GET", Path: "/v1/pools", Perm: auth.OrgRead, Tag: "pools", Summary: "List the pools you can submit to", Response: apiv1.Page[apiv1.Pool]{}, handler: s.listPools},
		{Method: "POST", Path: "/v1/pools", Perm: auth.PoolManage, Tag: "pools", Status: 201, Summary: "Create a dedicated pool", Body: apiv1.PoolRequest{}, Response: apiv1.Pool{}, handler: s.createPool},
		{Method: "GET", Path: "/v1/pools/:id", Perm: auth.OrgRead, Tag: "pools", Summary: "Get a pool and its queue depth", Response: apiv1.Pool{}, handler: s.getPool},
		{Method: "GET", Path: "/v1/pools/:id/plan", Perm: auth.OrgRead, Tag: "pools",
			Summary: "The Kubernetes objects the operator applies for a pool, in apply order, secrets redacted (Accept: application/yaml for the YAML `mpegflow pools plan` prints)", Response: apiv1.Page[apiv1.PlanObject]{}, handler: s.poolPlan},
		{Method: "POST", Path: "/v1/pools/:id/plan", Perm: auth.PoolManage, Tag: "pools",
			Summary: "Preview a settings change: the objects the operator would apply for the pool with the body's changes (checked as PATCH checks them), nothing saved", Body: apiv1.PoolRequest{}, Response: apiv1.Page[apiv1.PlanObject]{}, handler: s.previewPoolPlan},
		{Method: "PATCH", Path: "/v1/pools/:id", Perm: auth.PoolManage, Tag: "pools", Summary: "Update a pool's scaling settings", Body: apiv1.PoolRequest{}, Response: apiv1.Pool{}, handler: s.updatePool},
		{Method: "POST", Path: "/v1/pools/:id/pause", Perm: auth.PoolManage, Tag: "pools", Summary: "Pause a pool: claims stop at once, its ScaledJobs are zeroed", Response: apiv1.Pool{}, handler: s.pausePool},
		{Method: "POST", Path: "/v1/pools/:id/resume", Perm: auth.PoolManage, Tag: "pools", Summary: "Resume a paused pool", Response: apiv1.Pool{}, handler: s.resumePool},
		{Method: "DELETE", Path: "/v1/pools/:id", Perm: auth.PoolManage, Tag: "pools", Status: 204, Summary: "Delete a dedicated pool with no unfinished jobs", handler: s.deletePool},

		// Workers
		{Method: "GET", Path: "/v1/workers", Perm: auth.WorkerRead, Tag: "workers", Summary: "Fleet health: workers of your pools", Response: apiv1.Page[apiv1.Worker]{}, handler: s.listWorkers},
		{Method: "POST", Path: "/v1/workers/:id/drain", Perm: auth.WorkerManage, Tag: "workers", Summary: "Let a worker finish its job and claim no more", Response: apiv1.Worker{}, handler: s.drainWorker},
		{Method: "POST", Path: "/v1/workers/:id/evict", Perm: auth.WorkerManage, Tag: "workers", Summary: "Stop a worker and requeue its job", Response: apiv1.Worker{}, handler: s.evictWorker},

		// Platform administration
		{Method: "GET", Path: "/v1/platform/policy", Perm: auth.PlatformAdmin, Tag: "admin", Summary: "The platform policy: what each plan, and each overridden organization, may do with dedicated pools", Response: apiv1.PlatformPolicyDocument{}, handler: s.getPlatformPolicy},
		{Method: "PUT", Path: "/v1/platform/policy", Perm: auth.PlatformAdmin, Tag: "admin", Summary: "Replace the platform policy (every plan's rules and the organization overrides); pools outside it get a policy_violation and the operator stops running them", Body: apiv1.PlatformPolicy{}, Response: apiv1.PlatformPolicyDocument{}, handler: s.putPlatformPolicy},
		{Method: "GET", Path: "/v1/admin/organizations", Perm: auth.PlatformAdmin, Tag: "admin", Summary: "List every organization", Response: apiv1.Page[apiv1.Organization]{}, handler: s.adminListOrgs},
		{Method: "PATCH", Path: "/v1/admin/organizations/:id", Perm: auth.PlatformAdmin, Tag: "admin",
			Summary: "Set an organization's fair-share weight (share_weight 1-100, null for its plan's default): its share of claims within each pool and lane while others have work queued",
			Body:    apiv1.OrganizationAdminPatch{}, Response: apiv1.Organization{}, handler: s.adminUpdateOrg},
		{Method: "POST", Path: "/v1/admin/organizations/:id/suspend", Perm: auth.PlatformAdmin, Tag: "admin", Summary: "Suspend an organization", Response: apiv1.Organization{}, handler: s.adminSuspend},
		{Method: "POST", Path: "/v1/admin/organizations/:id/reinstate", Perm: auth.PlatformAdmin, Tag: "admin", Summary: "Reinstate a suspended organization", Response: apiv1.Organization{}, handler: s.adminReinstate},
		{Method: "GET", Path: "/v1/admin/organizations/:id/storage-grants", Perm: auth.PlatformAdmin, Tag: "admin",
			Summary: "List the buckets an organization may read besides its own storage (orgs/{id}/ of the deployment's bucket)", Response: apiv1.Page[apiv1.StorageGrant]{}, handler: s.listStorageGrants},
		{Method: "POST", Path: "/v1/admin/organizations/:id/storage-grants", Perm: auth.PlatformAdmin, Tag: "admin", Status: 201,
			Summary: "Grant an organization another bucket (or a prefix of one) for job inputs and batch sources, read with the server's storage credentials", Body: apiv1.StorageGrantRequest{}, Response: apiv1.StorageGrant{}, handler: s.createStorageGrant},
		{Method: "DELETE", Path: "/v1/admin/organizations/:id/storage-grants/:grant_id", Perm: auth.PlatformAdmin, Tag: "admin", Status: 204,
			Summary: "Revoke a storage grant; queued jobs that read from it fail when claimed", handler: s.deleteStorageGrant},
	}
}
