package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Job statuses. A job moves queued → running → completed | failed |
// cancelled, and running → retry_wait → queued when a retryable attempt
// fails. They are the contract's (api/v1), repeated here so a program that
// only imports client reads well.
const (
	JobQueued    = apiv1.JobQueued
	JobRunning   = apiv1.JobRunning
	JobRetryWait = apiv1.JobRetryWait
	JobCompleted = apiv1.JobCompleted
	JobFailed    = apiv1.JobFailed
	JobCancelled = apiv1.JobCancelled
)

// JobStatuses lists every status, for flag validation and completion.
var JobStatuses = apiv1.JobStatuses

// The job types are the contract's own (package api/v1).
type (
	// Job is one encode of one input, as the API shows it.
	Job = apiv1.Job
	// JobInput is what a job encodes: an asset or a URL.
	JobInput = apiv1.JobInput
	// JobCaption is a caption file given with a job (SubRip or WebVTT,
	// one per language), published as a subtitle track.
	JobCaption = apiv1.JobCaption
	// JobRequest submits a job; its IdempotencyKey travels as the
	// Idempotency-Key header.
	JobRequest = apiv1.JobRequest
	// JobEvent is one entry of a job's stored history.
	JobEvent = apiv1.JobEvent
	// Output is one file a completed job produced, with a download URL.
	Output = apiv1.Output
)

// Terminal reports whether a job status is final.
func Terminal(status string) bool { return apiv1.Terminal(status) }

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
