package testenv

import (
	"encoding/json"
	"testing"

	"github.com/mpegflow/mpegflow/client"
)

// Workers are the pods that claimed job id, one per attempt, in order,
// read from its job.started events through the API.
func Workers(t testing.TB, api *client.Client, id string) []string {
	t.Helper()
	evs, err := api.JobEvents(t.Context(), id)
	if err != nil {
		t.Fatalf("events of job %s: %v", id, err)
	}
	var pods []string
	for _, ev := range evs {
		if ev.Type != "job.started" {
			continue
		}
		var d struct {
			WorkerID string `json:"worker_id"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("job.started event of %s: %v", id, err)
		}
		pods = append(pods, d.WorkerID)
	}
	return pods
}
