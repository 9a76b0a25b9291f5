package apiv1

import (
	"encoding/json"
	"time"
)

// Batch phases (Batch.Status): expanding while inputs are still being
// turned into jobs, running until every job finished, then completed.
const (
	BatchExpanding = "expanding"
	BatchRunning   = "running"
	BatchCompleted = "completed"
	BatchCancelled = "cancelled"
	BatchFailed    = "failed"
)

// BatchSource is where a batch's inputs come from: an s3:// prefix under
// the organization's root (or a bucket granted to it), or a manifest asset
// (JSON Lines or CSV). Exactly one of Prefix and ManifestAssetID is set.
type BatchSource struct {
	// Prefix is s3://bucket/key-prefix.
	Prefix string `json:"prefix,omitempty"`
	// Include and Exclude are glob patterns on the keys under Prefix.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// ManifestAssetID names an asset holding one input per line: JSON Lines
	// ({"input": "s3://…"} or a JSON string) or CSV (first column; a first
	// row starting with "input" is a header).
	ManifestAssetID string `json:"manifest_asset_id,omitempty"`
	// Format is jsonl or csv (default: guessed from the asset).
	Format string `json:"format,omitempty"`
	// OnError says what a malformed manifest line does: reject (default)
	// refuses the whole batch and lists the lines; skip expands the rest
	// and records the lines in the batch.
	OnError string `json:"on_error,omitempty"`
}

// BatchRequest is the body of POST /v1/batches: a workflow (the
// organization's WorkflowID or a built-in Workflow name) applied to every
// input of Source, on the backfill lane of a pool. Submitting the same
// request again (or the same Key) returns the existing batch: a re-run
// resumes it.
type BatchRequest struct {
	// Key makes the submission idempotent. Default: a hash of the request.
	Key        string      `json:"key,omitempty"`
	WorkflowID string      `json:"workflow_id,omitempty"`
	Workflow   string      `json:"workflow,omitempty"`
	Source     BatchSource `json:"source"`
	// Pool defaults to the shared pool "default".
	Pool string `json:"pool,omitempty"`
	// Lane must be LaneBackfill (the default).
	Lane string `json:"lane,omitempty"`
	// MaxAttempts of each job, 1 to 20 (default: the server's).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// MaxConcurrency caps the batch's jobs queued or running at once.
	MaxConcurrency *int `json:"max_concurrency,omitempty"`
	// SubmitRate caps how many jobs per second are released to workers.
	SubmitRate *float64 `json:"submit_rate,omitempty"`
}

// BatchCounts counts a batch's jobs by status. Queued includes jobs waiting
// for a retry and Held (created, not yet released under the batch's caps).
type BatchCounts struct {
	Total     int64 `json:"total"`
	Queued    int64 `json:"queued"`
	Held      int64 `json:"held"`
	Running   int64 `json:"running"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
	Cancelled int64 `json:"cancelled"`
}

// BatchSummary is a batch as GET /v1/batches lists it: its expansion, not
// its job counters (GET /v1/batches/{id} reads those).
type BatchSummary struct {
	ID string `json:"id"`
	// Key identifies the submission (given, or sha256: of the request).
	Key        string  `json:"key"`
	PoolID     string  `json:"pool_id"`
	WorkflowID *string `json:"workflow_id,omitempty"`
	// Workflow is the built-in workflow's name, when one was used.
	Workflow string      `json:"workflow,omitempty"`
	Source   BatchSource `json:"source"`
	// MaxAttempts, MaxConcurrency and SubmitRate are as submitted.
	MaxAttempts    int      `json:"max_attempts"`
	MaxConcurrency *int     `json:"max_concurrency,omitempty"`
	SubmitRate     *float64 `json:"submit_rate,omitempty"`
	// Expansion is expanding, expanded, cancelled or failed.
	Expansion string `json:"expansion"`
	// Expected inputs, and how many were Expanded into jobs so far.
	Expected int64 `json:"expected"`
	Expanded int64 `json:"expanded"`
	// SkippedLines counts malformed manifest lines skipped (on_error=skip).
	SkippedLines int64 `json:"skipped_lines"`
	// Duplicates counts inputs listed more than once.
	Duplicates int64 `json:"duplicates"`
	// LineErrors lists the first malformed lines ({line, detail}).
	LineErrors json.RawMessage `json:"line_errors"`
	// Error says why a failed batch failed.
	Error      *string    `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ExpandedAt *time.Time `json:"expanded_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Batch is a backfill with its job counters, phase and ETA
// (GET /v1/batches/{id} and the batch actions).
type Batch struct {
	BatchSummary
	// Status is the phase: one of the Batch* constants.
	Status string      `json:"status"`
	Counts BatchCounts `json:"counts"`
	// ETA estimates when a running batch finishes.
	ETA *time.Time `json:"eta,omitempty"`
	// Affected counts the jobs a cancel or retry-failed changed.
	Affected *int64 `json:"affected_jobs,omitempty"`
}

// Finished reports whether the batch will change no more.
func (b Batch) Finished() bool {
	return b.Status == BatchCompleted || b.Status == BatchCancelled || b.Status == BatchFailed
}
