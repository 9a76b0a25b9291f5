package apiv1

import (
	"encoding/json"
	"strconv"
	"time"
)

// Job statuses. A job moves queued → running → completed | failed |
// cancelled, and running → retry_wait → queued when a retryable attempt
// fails.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobRetryWait = "retry_wait"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// JobStatuses lists every status, for validating filters and completion.
var JobStatuses = []string{JobQueued, JobRunning, JobRetryWait, JobCompleted, JobFailed, JobCancelled}

// Terminal reports whether a job status is final: the job changes no more.
func Terminal(status string) bool {
	return status == JobCompleted || status == JobFailed || status == JobCancelled
}

// Job is one encode of one input (GET /v1/jobs/{id}).
type Job struct {
	// ID is the job's UUID.
	ID string `json:"id"`
	// PoolID is the pool whose workers run the job.
	PoolID string `json:"pool_id"`
	// Lane is LaneLive or LaneBackfill.
	Lane string `json:"lane"`
	// Priority orders the lane: higher first (-100 to 100).
	Priority int `json:"priority"`
	// Status is one of JobStatuses.
	Status string `json:"status"`
	// InputAssetID is the input when it is one of the organization's assets.
	InputAssetID *string `json:"input_asset_id,omitempty"`
	// InputURL is the input when it is a URL (s3:// in canonical form).
	InputURL *string `json:"input_url,omitempty"`
	// Captions are the caption files given with the job, as stored: URLs
	// of storage in canonical s3:// form, languages in canonical BCP 47.
	Captions []JobCaption `json:"captions,omitempty"`
	// WorkflowID is the organization's workflow the spec came from, if any.
	WorkflowID *string `json:"workflow_id,omitempty"`
	// Spec is the encode spec the job runs (renditions, packaging).
	Spec json.RawMessage `json:"spec"`
	// IdempotencyKey is the Idempotency-Key the job was submitted with.
	IdempotencyKey *string `json:"idempotency_key,omitempty"`
	// Attempts counts the claims so far; MaxAttempts bounds them.
	Attempts    int `json:"attempts"`
	MaxAttempts int `json:"max_attempts"`
	// LeaseExpiresAt is when a running job's worker must next report.
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
	// RunAfter is when a job waiting for a retry is queued again.
	RunAfter *time.Time `json:"run_after,omitempty"`
	// WorkerID is the worker running (or that last ran) the job.
	WorkerID *string `json:"worker_id,omitempty"`
	// Progress runs from 0 to 1 while the job runs.
	Progress float32 `json:"progress"`
	// Error says why the last attempt failed.
	Error *string `json:"error,omitempty"`
	// Outputs lists the files a completed job produced (JobOutputs adds
	// download URLs).
	Outputs json.RawMessage `json:"outputs"`
	// Usage is what the job consumed (encode and GPU seconds, output
	// seconds), for billing.
	Usage json.RawMessage `json:"usage"`
	// Metadata is the caller's own key/value pairs, returned as given.
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// StartedAt is the first claim; FinishedAt the end, if final.
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Terminal reports whether the job has finished for good.
func (j Job) Terminal() bool { return Terminal(j.Status) }

// Progress64 is Progress widened to float64 as it reads on the wire (0.7,
// not 0.699999988), for arithmetic such as percentages. Progress itself is
// a float32 because the server stores and writes it so.
func (j Job) Progress64() float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(j.Progress), 'g', -1, 32), 64) // formatted just above: always parses
	return f
}

// JobInput is what a job encodes: one of the organization's assets or an
// https:// or s3:// URL (exactly one).
type JobInput struct {
	AssetID string `json:"asset_id,omitempty"`
	URL     string `json:"url,omitempty"`
}

// JobCaption is a caption file given with a job (a sidecar). The encoder
// converts it to WebVTT and publishes it as a subtitle track, like the
// input's own text subtitle streams (output kind OutputSubtitles, with
// SubtitleAttrSource "sidecar").
type JobCaption struct {
	// URL is where the file is, checked as the input's URL is: an s3://
	// URL (or a URL of the deployment's storage) inside the
	// organization's storage, or a public https URL.
	URL string `json:"url"`
	// Language is a BCP 47 tag ("fr", "pt-BR"); at most one file per
	// language.
	Language string `json:"language"`
	// Format is "srt" (SubRip) or "vtt" (WebVTT). The file is read as
	// this format only.
	Format string `json:"format"`
}

// JobRequest is the body of POST /v1/jobs. The encode comes from exactly one
// of WorkflowID (one of the organization's workflows), Workflow (a built-in
// name such as hls-ladder) or Spec (an inline encode spec).
type JobRequest struct {
	Input JobInput `json:"input"`
	// Captions are caption files to publish with the renditions: at most
	// 8, one per language.
	Captions   []JobCaption    `json:"captions,omitempty"`
	WorkflowID string          `json:"workflow_id,omitempty"`
	Workflow   string          `json:"workflow,omitempty"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	// Pool defaults to the shared pool "default".
	Pool string `json:"pool,omitempty"`
	// Lane defaults to LaneLive.
	Lane string `json:"lane,omitempty"`
	// Priority is -100 to 100 (default 0).
	Priority int `json:"priority,omitempty"`
	// MaxAttempts is 1 to 20 (default: the server's).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Metadata is at most 50 keys of 1 to 64 bytes, values at most 512.
	Metadata map[string]string `json:"metadata,omitempty"`
	// IdempotencyKey is not part of the body: a client sends it as the
	// Idempotency-Key header, which makes a retried submission return the
	// first job instead of creating a second.
	IdempotencyKey string `json:"-"`
}

// JobEvent is one entry of a job's stored history
// (GET /v1/jobs/{id}/events).
type JobEvent struct {
	// ID orders events; pass the last one as ?since= to read on.
	ID    int64  `json:"id"`
	JobID string `json:"job_id"`
	// Type is one of WebhookEvents' job.* names, job.requeued or
	// job.retry_scheduled; a job encoded in chunks also has job.split,
	// job.stitching and its tasks' task.started, task.completed,
	// task.failed, task.requeued, task.retry_scheduled and task.cancelled
	// (Data names the task: task, task_id and a chunk's index as chunk).
	Type string `json:"type"`
	// Data is the event's details (worker, attempt, error, ...).
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

// Output is one file a completed job produced
// (GET /v1/jobs/{id}/outputs), with a fresh presigned download URL.
type Output struct {
	// Name is a relative path such as hls/720p/index.m3u8.
	Name string `json:"name"`
	// Kind says what the file is: one of OutputKinds (video, playlist,
	// thumbnail, storyboard, ...).
	Kind        string `json:"kind"`
	SizeBytes   int64  `json:"size_bytes"`
	ContentType string `json:"content_type"`
	// Attributes are kind-specific facts (rendition, resolution, ...).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Download fetches the file without the API key.
	Download PresignedURL `json:"download"`
}
