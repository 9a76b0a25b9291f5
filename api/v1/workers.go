package apiv1

import (
	"encoding/json"
	"time"
)

// Worker is an encode pod as the fleet view (GET /v1/workers) shows it.
type Worker struct {
	ID     string `json:"id"`
	PoolID string `json:"pool_id"`
	Lane   string `json:"lane"`
	// Node is the Kubernetes node the pod runs on.
	Node string `json:"node"`
	// Capabilities are what the worker reported (accelerator, FFmpeg
	// version, encoders).
	Capabilities json.RawMessage `json:"capabilities"`
	// Status is online, draining, evicted or offline.
	Status          string    `json:"status"`
	CurrentJobID    *string   `json:"current_job_id"`
	RegisteredAt    time.Time `json:"registered_at"`
	LastHeartbeatAt time.Time `json:"last_heartbeat_at"`
}
