package apiv1

import (
	"encoding/json"
	"time"
)

// Workflow is a named, reusable encode spec of the organization.
type Workflow struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Spec        json.RawMessage `json:"spec"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// WorkflowRequest is the body of POST /v1/workflows.
type WorkflowRequest struct {
	// Name is 1 to 100 characters, unique in the organization.
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Spec        json.RawMessage `json:"spec"`
}

// WorkflowPatch is the body of PATCH /v1/workflows/{id}: it changes the
// fields that are set.
type WorkflowPatch struct {
	Name        *string         `json:"name,omitempty"`
	Description *string         `json:"description,omitempty"`
	Spec        json.RawMessage `json:"spec,omitempty"`
}
