package apiserver

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
)

// This file maps storage rows onto the wire types of api/v1, one function
// per resource. Handlers answer only apiv1 types: a column added to a row
// reaches clients only when it is added here and to the contract.

// idPtr renders an optional id as the wire's optional string.
func idPtr(id *uuid.UUID) *string {
	if id == nil {
		return nil
	}
	s := id.String()
	return &s
}

// mapAll maps rows to wire items; the result is never nil, so an empty
// collection reads [] on the wire.
func mapAll[R, W any](rows []R, out func(R) W) []W {
	ws := make([]W, len(rows))
	for i, r := range rows {
		ws[i] = out(r)
	}
	return ws
}

func jobOut(j store.Job) apiv1.Job {
	var captions []apiv1.JobCaption
	_ = json.Unmarshal(j.Captions, &captions) // written by the API from checked values
	return apiv1.Job{
		ID: j.ID.String(), PoolID: j.PoolID, Lane: j.Lane, Priority: j.Priority, Status: j.Status,
		InputAssetID: idPtr(j.InputAssetID), InputURL: j.InputURL, WorkflowID: idPtr(j.WorkflowID),
		Spec: j.Spec, IdempotencyKey: j.IdempotencyKey, Attempts: j.Attempts, MaxAttempts: j.MaxAttempts,
		LeaseExpiresAt: j.LeaseExpiresAt, RunAfter: j.RunAfter, WorkerID: j.WorkerID, Progress: j.Progress,
		Error: j.Error, Outputs: j.Outputs, Usage: j.Usage, Metadata: j.Metadata,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Captions: captions,
	}
}

func jobEventOut(e store.JobEvent) apiv1.JobEvent {
	return apiv1.JobEvent{ID: e.ID, JobID: e.JobID.String(), Type: e.Type, Data: e.Data, CreatedAt: e.CreatedAt}
}

func presignedOut(u objstore.PresignedURL) apiv1.PresignedURL {
	return apiv1.PresignedURL{URL: u.URL, Method: u.Method, ExpiresAt: u.ExpiresAt}
}

// assetOut maps an asset; up and down are the presigned URLs to show, if
// any.
func assetOut(a store.Asset, up, down *objstore.PresignedURL) apiv1.Asset {
	out := apiv1.Asset{ID: a.ID.String(), Filename: a.Filename, ContentType: a.ContentType, SizeBytes: a.SizeBytes, CreatedAt: a.CreatedAt, PartSize: a.PartSize}
	if a.UploadStatus != nil {
		out.UploadStatus = *a.UploadStatus
	}
	if up != nil {
		u := presignedOut(*up)
		out.Upload = &u
	}
	if down != nil {
		d := presignedOut(*down)
		out.Download = &d
	}
	return out
}

func assetListItem(a store.Asset) apiv1.Asset { return assetOut(a, nil, nil) }

// batchSummaryOut maps a batch row. Its source was stored from the
// validated request, so it decodes; a row that does not is shown with an
// empty source rather than failing the listing.
func batchSummaryOut(b store.Batch) apiv1.BatchSummary {
	var src apiv1.BatchSource
	_ = json.Unmarshal(b.Source, &src) // see above: the API wrote it
	return apiv1.BatchSummary{
		ID: b.ID.String(), Key: b.Key, PoolID: b.PoolID, WorkflowID: idPtr(b.WorkflowID), Workflow: b.Workflow,
		Source: src, MaxAttempts: b.MaxAttempts, MaxConcurrency: b.MaxConcurrency, SubmitRate: b.SubmitRate,
		Expansion: b.Expansion, Expected: b.Expected, Expanded: b.Expanded, SkippedLines: b.Skipped,
		Duplicates: b.Duplicates, LineErrors: b.LineErrors, Error: b.Error,
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, ExpandedAt: b.ExpandedAt, FinishedAt: b.FinishedAt,
	}
}

func batchCountsOut(c store.BatchCounts) apiv1.BatchCounts { return apiv1.BatchCounts(c) }

func batchOut(b store.Batch, c store.BatchCounts, now time.Time) apiv1.Batch {
	return apiv1.Batch{BatchSummary: batchSummaryOut(b), Status: b.Phase(c), Counts: batchCountsOut(c), ETA: b.ETA(c, now)}
}

// poolOut maps a pool row; depth, when not nil, is its queue depth per lane.
func poolOut(p store.Pool, depth map[string]int64) apiv1.Pool {
	return apiv1.Pool{
		ID: p.ID, OrgID: idPtr(p.OrgID), PoolSettings: p.Wire(),
		Status: p.Status, PausedBy: p.PausedBy, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, QueueDepth: depth,
		PolicyViolation: p.PolicyViolation, PolicyViolationAt: p.PolicyViolationAt,
	}
}

func poolListItem(p store.Pool) apiv1.Pool { return poolOut(p, nil) }

func workflowOut(w store.Workflow) apiv1.Workflow {
	return apiv1.Workflow{ID: w.ID.String(), Name: w.Name, Description: w.Description, Spec: w.Spec, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

func webhookOut(w store.Webhook) apiv1.Webhook {
	return apiv1.Webhook{
		ID: w.ID.String(), URL: w.URL, Description: w.Description, Events: w.Events, Enabled: w.Enabled,
		ConsecutiveFailures: w.ConsecutiveFailures, DisabledReason: w.DisabledReason, DisabledAt: w.DisabledAt,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
}

func deliveryOut(d store.WebhookDelivery) apiv1.WebhookDelivery {
	return apiv1.WebhookDelivery{
		ID: d.ID.String(), WebhookID: d.WebhookID.String(), EventID: d.EventID, EventType: d.EventType,
		Payload: d.Payload, Status: d.Status, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt,
		LastAttemptAt: d.LastAttemptAt, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		LatencyMS: d.LatencyMS, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt,
	}
}

func memberOut(m store.Member) apiv1.Member {
	return apiv1.Member{UserID: m.UserID.String(), Email: m.Email, Name: m.Name, Role: string(m.Role), CreatedAt: m.CreatedAt}
}

func apiKeyOut(k store.APIKey) apiv1.APIKey {
	var role *string
	if k.Role != nil {
		r := string(*k.Role)
		role = &r
	}
	return apiv1.APIKey{
		ID: k.ID.String(), UserID: k.UserID.String(), Name: k.Name, Prefix: k.Prefix, Role: role,
		CreatedBy: idPtr(k.CreatedBy), CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt,
	}
}

// invitationOut maps an invitation with its state at now.
func invitationOut(i store.Invitation, now time.Time) apiv1.Invitation {
	return apiv1.Invitation{
		ID: i.ID.String(), UserID: i.UserID.String(), Role: string(i.Role), CreatedBy: idPtr(i.CreatedBy),
		CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt, RedeemedAt: i.RedeemedAt, RevokedAt: i.RevokedAt,
		KeyID: idPtr(i.KeyID), Status: i.Status(now),
	}
}

func orgOut(o store.Organization) apiv1.Organization {
	return apiv1.Organization{
		ID: o.ID.String(), Name: o.Name, Status: o.Status, Plan: o.Plan, BillingEmail: o.BillingEmail,
		BillingName: o.BillingName, JobQuota: o.JobQuota, ShareWeight: o.ShareWeight,
		EffectiveShareWeight: apiv1.ShareWeight(o.Plan, o.ShareWeight), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}

func usageDayOut(d store.UsageDay) apiv1.UsageDay { return apiv1.UsageDay(d) }

func storageGrantOut(g store.StorageGrant) apiv1.StorageGrant {
	return apiv1.StorageGrant{ID: g.ID.String(), OrgID: g.OrgID.String(), Bucket: g.Bucket, Prefix: g.Prefix, GrantedBy: idPtr(g.GrantedBy), CreatedAt: g.CreatedAt}
}

func workerOut(w store.Worker) apiv1.Worker {
	return apiv1.Worker{
		ID: w.ID, PoolID: w.PoolID, Lane: w.Lane, Node: w.Node, Capabilities: w.Capabilities, Status: w.Status,
		CurrentJobID: idPtr(w.CurrentJobID), RegisteredAt: w.RegisteredAt, LastHeartbeatAt: w.LastHeartbeatAt,
	}
}
