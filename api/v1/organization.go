package apiv1

import "time"

// Organization is a tenant: everything customers create belongs to one.
type Organization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Status is active or suspended.
	Status       string  `json:"status"`
	Plan         string  `json:"plan"`
	BillingEmail *string `json:"billing_email"`
	BillingName  *string `json:"billing_name"`
	// JobQuota caps the organization's unfinished jobs.
	JobQuota int `json:"job_quota"`
	// ShareWeight overrides the plan's fair-share weight (1–100); null
	// means the plan's default (PlanShareWeights). Only a platform
	// administrator sets it.
	ShareWeight *int `json:"share_weight"`
	// EffectiveShareWeight is the weight the organization's queued jobs
	// get within each pool and lane: ShareWeight, or the plan's default.
	EffectiveShareWeight int       `json:"effective_share_weight"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// OrganizationAdminPatch is the body of PATCH
// /v1/admin/organizations/{id}: settings only a platform administrator
// changes. At least one field must be given; absent fields are unchanged.
type OrganizationAdminPatch struct {
	// Plan moves the organization to another plan (one of Plans). Its
	// platform-policy limits and fair-share default follow the plan.
	Plan *string `json:"plan,omitempty"`
	// ShareWeight sets the fair-share weight (1–100); null returns the
	// organization to its plan's default.
	ShareWeight *int `json:"share_weight"`
}

// OrganizationPatch is the body of PATCH /v1/organization.
type OrganizationPatch struct {
	Name *string `json:"name,omitempty"`
}

// Plans lists the plans an organization may be on.
var Plans = []string{"free", "starter", "pro", "enterprise"}

// Billing is the organization's plan and billing contact
// (GET /v1/organization/billing).
type Billing struct {
	Plan         string  `json:"plan"`
	BillingEmail *string `json:"billing_email"`
	BillingName  *string `json:"billing_name"`
}

// BillingPatch is the body of PATCH /v1/organization/billing: it changes
// the fields that are set.
type BillingPatch struct {
	// Plan may only repeat the current plan: a platform administrator
	// changes plans (OrganizationAdminPatch), since the plan sets the
	// organization's platform-policy limits.
	Plan         *string `json:"plan,omitempty"`
	BillingEmail *string `json:"billing_email,omitempty"`
	BillingName  *string `json:"billing_name,omitempty"`
}

// UsageDay is one organization's usage on one UTC day.
type UsageDay struct {
	// Day is the day's midnight UTC.
	Day           time.Time `json:"day"`
	JobsCompleted int64     `json:"jobs_completed"`
	JobsFailed    int64     `json:"jobs_failed"`
	JobsCancelled int64     `json:"jobs_cancelled"`
	EncodeSeconds float64   `json:"encode_seconds"`
	GPUSeconds    float64   `json:"gpu_seconds"`
	OutputMinutes float64   `json:"output_minutes"`
}

// Usage is the organization's usage per UTC day from From to To
// (YYYY-MM-DD, both included): GET /v1/organization/usage.
type Usage struct {
	From string     `json:"from"`
	To   string     `json:"to"`
	Days []UsageDay `json:"days"`
}

// StorageGrant opens a bucket other than the deployment's (or a prefix of
// it) to one organization's job inputs and batch sources. Only a platform
// administrator creates or deletes grants.
type StorageGrant struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Bucket    string    `json:"bucket"`
	Prefix    string    `json:"prefix"`
	GrantedBy *string   `json:"granted_by"`
	CreatedAt time.Time `json:"created_at"`
}

// StorageGrantRequest is the body of
// POST /v1/admin/organizations/{id}/storage-grants.
type StorageGrantRequest struct {
	Bucket string `json:"bucket"`
	// Prefix limits the grant to keys under it (ending in '/'); empty grants
	// the whole bucket.
	Prefix string `json:"prefix,omitempty"`
}
