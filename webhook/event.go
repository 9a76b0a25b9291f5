package webhook

import (
	"encoding/json"
	"time"
)

// Event is the body of a delivery. The same event sent to the same webhook
// always has the same ID, retries and redeliveries included: use it to
// ignore duplicates.
type Event struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"` // job.queued, job.started, job.completed, job.failed, job.cancelled, pool.paused, pool.resumed
	OrgID  string          `json:"org_id"`
	JobID  string          `json:"job_id,omitempty"`
	PoolID string          `json:"pool_id,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	// Job is the job as it stood when the event happened (job events only):
	// status, error, outputs, usage and your metadata.
	Job json.RawMessage `json:"job,omitempty"`
	At  time.Time       `json:"at"`
}
