package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Batch phases (Batch.Status).
const (
	BatchExpanding = "expanding"
	BatchRunning   = "running"
	BatchCompleted = "completed"
	BatchCancelled = "cancelled"
	BatchFailed    = "failed"
)

// BatchSource is where a batch's inputs come from: an s3:// prefix under
// the organization's root, or a manifest asset (JSON Lines or CSV). It is
// the server's own type.
type BatchSource = backfill.Source

// BatchRequest submits a backfill. Submitting the same request again (or
// the same Key) returns the existing batch: a re-run resumes it.
type BatchRequest struct {
	Key            string      `json:"key,omitempty"`
	WorkflowID     string      `json:"workflow_id,omitempty"`
	Workflow       string      `json:"workflow,omitempty"`
	Source         BatchSource `json:"source"`
	Pool           string      `json:"pool,omitempty"`
	MaxAttempts    int         `json:"max_attempts,omitempty"`
	MaxConcurrency *int        `json:"max_concurrency,omitempty"`
	SubmitRate     *float64    `json:"submit_rate,omitempty"`
}

// BatchCounts counts a batch's jobs by status (the server's own type).
type BatchCounts = store.BatchCounts

// Batch is a backfill as the API shows it.
type Batch struct {
	ID           string          `json:"id"`
	Key          string          `json:"key"`
	PoolID       string          `json:"pool_id"`
	Workflow     string          `json:"workflow,omitempty"`
	WorkflowID   *string         `json:"workflow_id,omitempty"`
	Source       BatchSource     `json:"source"`
	Status       string          `json:"status"`
	Expansion    string          `json:"expansion"`
	Expected     int64           `json:"expected"`
	Expanded     int64           `json:"expanded"`
	SkippedLines int64           `json:"skipped_lines"`
	Duplicates   int64           `json:"duplicates"`
	LineErrors   json.RawMessage `json:"line_errors,omitempty"`
	Counts       BatchCounts     `json:"counts"`
	ETA          *time.Time      `json:"eta,omitempty"`
	Affected     *int64          `json:"affected_jobs,omitempty"`
	Error        *string         `json:"error,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

// Finished reports whether the batch will change no more.
func (b Batch) Finished() bool {
	return b.Status == BatchCompleted || b.Status == BatchCancelled || b.Status == BatchFailed
}

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

// BatchSummary is a batch as the list shows it: its expansion, not its job
// counters (GetBatch reads those).
type BatchSummary struct {
	ID           string      `json:"id"`
	Key          string      `json:"key"`
	PoolID       string      `json:"pool_id"`
	Workflow     string      `json:"workflow,omitempty"`
	WorkflowID   *string     `json:"workflow_id,omitempty"`
	Source       BatchSource `json:"source"`
	Expansion    string      `json:"expansion"`
	Expected     int64       `json:"expected"`
	Expanded     int64       `json:"expanded"`
	SkippedLines int64       `json:"skipped_lines"`
	Duplicates   int64       `json:"duplicates"`
	Error        *string     `json:"error,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	FinishedAt   *time.Time  `json:"finished_at,omitempty"`
}

// ListBatches reads one page of batches, newest first.
func (c *Client) ListBatches(ctx context.Context, limit int, cursor string) (Page[BatchSummary], error) {
	var p Page[BatchSummary]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/batches", query: pageQuery(limit, cursor), out: &p})
	return p, err
}
