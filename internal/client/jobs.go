package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mpegflow/mpegflow/internal/store"
)

// Job statuses. A job moves queued → running → completed | failed |
// cancelled, and running → retry_wait → queued when a retryable attempt
// fails.
// They are the server's own.
const (
	JobQueued    = store.JobQueued
	JobRunning   = store.JobRunning
	JobRetryWait = store.JobRetryWait
	JobCompleted = store.JobCompleted
	JobFailed    = store.JobFailed
	JobCancelled = store.JobCancelled
)

// JobStatuses lists every status, for flag validation and completion.
var JobStatuses = store.JobStatuses

// Job is one encode of one input, as the API shows it.
type Job struct {
	ID             string          `json:"id"`
	PoolID         string          `json:"pool_id"`
	Lane           string          `json:"lane"`
	Priority       int             `json:"priority"`
	Status         string          `json:"status"`
	InputAssetID   *string         `json:"input_asset_id,omitempty"`
	InputURL       *string         `json:"input_url,omitempty"`
	WorkflowID     *string         `json:"workflow_id,omitempty"`
	Spec           json.RawMessage `json:"spec"`
	IdempotencyKey *string         `json:"idempotency_key,omitempty"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"max_attempts"`
	LeaseExpiresAt *time.Time      `json:"lease_expires_at,omitempty"`
	RunAfter       *time.Time      `json:"run_after,omitempty"`
	WorkerID       *string         `json:"worker_id,omitempty"`
	Progress       float64         `json:"progress"`
	Error          *string         `json:"error,omitempty"`
	Outputs        json.RawMessage `json:"outputs"`
	Usage          json.RawMessage `json:"usage"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
}

// Terminal reports whether the job has finished for good.
func (j Job) Terminal() bool { return Terminal(j.Status) }

// Terminal reports whether a job status is final.
func Terminal(status string) bool {
	return status == JobCompleted || status == JobFailed || status == JobCancelled
}

// JobInput is what a job encodes: one of the organization's assets or an
// https:// or s3:// URL.
type JobInput struct {
	AssetID string `json:"asset_id,omitempty"`
	URL     string `json:"url,omitempty"`
}

// JobRequest submits a job. The encode comes from exactly one of
// WorkflowID (one of the organization's workflows), Workflow (a built-in
// name such as hls-ladder) or Spec (an inline encode spec).
type JobRequest struct {
	Input       JobInput          `json:"input"`
	WorkflowID  string            `json:"workflow_id,omitempty"`
	Workflow    string            `json:"workflow,omitempty"`
	Spec        json.RawMessage   `json:"spec,omitempty"`
	Pool        string            `json:"pool,omitempty"`
	Lane        string            `json:"lane,omitempty"`
	Priority    int               `json:"priority,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// IdempotencyKey, sent as the Idempotency-Key header, makes a retried
	// submission return the first job instead of creating a second.
	IdempotencyKey string `json:"-"`
}

// CreateJob submits a job. A replay of an idempotency key answers the job
// the key first created.
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (Job, error) {
	var h http.Header
	if req.IdempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {req.IdempotencyKey}}
	}
	var j Job
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs", body: req, header: h, out: &j})
	return j, err
}

// GetJob reads one job.
func (c *Client) GetJob(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/jobs/" + url.PathEscape(id), out: &j})
	return j, err
}

// JobFilter narrows ListJobs; zero values match everything.
type JobFilter struct {
	Status        string
	Pool          string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Limit is the page size, 1 to 200 (the server's default when 0).
	Limit int
}

// ListJobs reads one page of jobs, newest first. Pass the previous page's
// NextCursor to continue; "" starts at the newest.
func (c *Client) ListJobs(ctx context.Context, f JobFilter, cursor string) (Page[Job], error) {
	q := url.Values{}
	setIf(q, "status", f.Status)
	setIf(q, "pool", f.Pool)
	if !f.CreatedAfter.IsZero() {
		q.Set("created_after", f.CreatedAfter.UTC().Format(time.RFC3339))
	}
	if !f.CreatedBefore.IsZero() {
		q.Set("created_before", f.CreatedBefore.UTC().Format(time.RFC3339))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	setIf(q, "cursor", cursor)
	var p Page[Job]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/jobs", query: q, out: &p})
	return p, err
}

// CancelJob cancels a job that has not finished; a finished one answers 409.
func (c *Client) CancelJob(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + url.PathEscape(id) + "/cancel", out: &j})
	return j, err
}

// JobEvent is one entry of a job's stored history.
type JobEvent struct {
	ID        int64           `json:"id"`
	JobID     string          `json:"job_id"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

// jobEventsPage is the most events the server returns per request.
const jobEventsPage = 200

// JobEvents reads a job's whole history, oldest first.
func (c *Client) JobEvents(ctx context.Context, id string) ([]JobEvent, error) {
	out := []JobEvent{}
	var since int64
	for {
		q := url.Values{"limit": {strconv.Itoa(jobEventsPage)}}
		if since > 0 {
			q.Set("since", strconv.FormatInt(since, 10))
		}
		var p Page[JobEvent]
		if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/jobs/" + url.PathEscape(id) + "/events", query: q, out: &p}); err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if len(p.Items) < jobEventsPage {
			return out, nil
		}
		since = p.Items[len(p.Items)-1].ID
	}
}

// Output is one file a job produced. Name is a relative path
// (hls/720p/index.m3u8); Download fetches it without the API key.
type Output struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	SizeBytes   int64             `json:"size_bytes"`
	ContentType string            `json:"content_type"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Download    PresignedURL      `json:"download"`
}

// JobOutputs lists a job's output files with fresh presigned download URLs.
// A job that has not completed has none.
func (c *Client) JobOutputs(ctx context.Context, id string) ([]Output, error) {
	var p Page[Output]
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/jobs/" + url.PathEscape(id) + "/outputs", out: &p}); err != nil {
		return nil, err
	}
	if p.Items == nil {
		p.Items = []Output{}
	}
	return p.Items, nil
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
