package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Batch phases (Batch.Status).
const (
	BatchExpanding = apiv1.BatchExpanding
	BatchRunning   = apiv1.BatchRunning
	BatchCompleted = apiv1.BatchCompleted
	BatchCancelled = apiv1.BatchCancelled
	BatchFailed    = apiv1.BatchFailed
)

// The batch types are the contract's own (package api/v1).
type (
	// BatchSource is where a batch's inputs come from: an s3:// prefix or
	// a manifest asset.
	BatchSource = apiv1.BatchSource
	// BatchRequest submits a backfill. Submitting the same request again
	// (or the same Key) returns the existing batch: a re-run resumes it.
	BatchRequest = apiv1.BatchRequest
	// BatchCounts counts a batch's jobs by status.
	BatchCounts = apiv1.BatchCounts
	// Batch is a backfill with its counters, phase and ETA.
	Batch = apiv1.Batch
	// BatchSummary is a batch as the list shows it: its expansion, not its
	// job counters (GetBatch reads those).
	BatchSummary = apiv1.BatchSummary
)

// CreateBatch submits a batch; resumed is true when the server already had
// it (the same request or key) and returned it instead of creating one.
func (c *Client) CreateBatch(ctx context.Context, req BatchRequest) (b Batch, resumed bool, err error) {
	var h http.Header
	err = c.do(ctx, call{method: http.MethodPost, path: "/v1/batches", body: req, out: &b, respHeader: &h})
	return b, h.Get("Idempotent-Replayed") == "true", err
}

// GetBatch reads a batch with its counters and ETA.
func (c *Client) GetBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/batches/" + url.PathEscape(id), out: &b})
	return b, err
}

// CancelBatch stops a batch's expansion and cancels its unstarted jobs.
func (c *Client) CancelBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/batches/" + url.PathEscape(id) + "/cancel", out: &b})
	return b, err
}

// RetryFailedBatch queues a batch's failed jobs again.
func (c *Client) RetryFailedBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/batches/" + url.PathEscape(id) + "/retry-failed", out: &b})
	return b, err
}

// ListBatches reads one page of batches, newest first.
func (c *Client) ListBatches(ctx context.Context, limit int, cursor string) (Page[BatchSummary], error) {
	var p Page[BatchSummary]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/batches", query: pageQuery(limit, cursor), out: &p})
	return p, err
}
