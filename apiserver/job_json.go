package apiserver

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/jsonw"
)

// sendJob answers with status and j as JSON, written by appendJob; the
// answer to every submission, which encoding/json's reflection made a
// good part of the API's cost per job.
func sendJob(c *fiber.Ctx, status int, j apiv1.Job) error {
	b, err := appendJob(make([]byte, 0, 1024), j)
	if err != nil {
		return c.Status(status).JSON(j) // encoding/json's own error, as before
	}
	c.Status(status).Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(b)
	return nil
}

// appendJob appends json.Marshal(j), byte for byte: the same fields in
// the same order, the same omissions, the same escaping
// (TestAppendJobIsMarshal).
func appendJob(b []byte, j apiv1.Job) (_ []byte, err error) {
	w := jobWriter{b: b}
	w.str(`{"id":`, j.ID)
	w.str(`,"pool_id":`, j.PoolID)
	w.str(`,"lane":`, j.Lane)
	w.b = jsonw.Int(append(w.b, `,"priority":`...), j.Priority)
	w.str(`,"status":`, j.Status)
	w.optStr(`,"input_asset_id":`, j.InputAssetID)
	w.optStr(`,"input_url":`, j.InputURL)
	if len(j.Captions) > 0 {
		w.b = append(w.b, `,"captions":[`...)
		for i, c := range j.Captions {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.str(`{"url":`, c.URL)
			w.str(`,"language":`, c.Language)
			w.str(`,"format":`, c.Format)
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	w.optStr(`,"workflow_id":`, j.WorkflowID)
	w.raw(`,"spec":`, j.Spec)
	w.optStr(`,"idempotency_key":`, j.IdempotencyKey)
	w.b = jsonw.Int(append(w.b, `,"attempts":`...), j.Attempts)
	w.b = jsonw.Int(append(w.b, `,"max_attempts":`...), j.MaxAttempts)
	w.optTime(`,"lease_expires_at":`, j.LeaseExpiresAt)
	w.optTime(`,"run_after":`, j.RunAfter)
	w.optStr(`,"worker_id":`, j.WorkerID)
	if w.err == nil {
		w.b, w.err = jsonw.Float32(append(w.b, `,"progress":`...), j.Progress)
	}
	w.optStr(`,"error":`, j.Error)
	w.raw(`,"outputs":`, j.Outputs)
	w.raw(`,"usage":`, j.Usage)
	w.raw(`,"metadata":`, j.Metadata)
	w.time(`,"created_at":`, j.CreatedAt)
	w.time(`,"updated_at":`, j.UpdatedAt)
	w.optTime(`,"started_at":`, j.StartedAt)
	w.optTime(`,"finished_at":`, j.FinishedAt)
	if w.err != nil {
		return nil, w.err
	}
	return append(w.b, '}'), nil
}

// jobWriter appends a job's fields, keeping the first error.
type jobWriter struct {
	b   []byte
	err error
}

func (w *jobWriter) str(name, s string) {
	if w.err == nil {
		w.b, w.err = jsonw.String(append(w.b, name...), s)
	}
}

func (w *jobWriter) optStr(name string, s *string) {
	if s != nil {
		w.str(name, *s)
	}
}

func (w *jobWriter) raw(name string, raw json.RawMessage) {
	if w.err == nil {
		w.b, w.err = jsonw.Raw(append(w.b, name...), raw)
	}
}

func (w *jobWriter) time(name string, t time.Time) {
	if w.err == nil {
		w.b, w.err = jsonw.Time(append(w.b, name...), t)
	}
}

func (w *jobWriter) optTime(name string, t *time.Time) {
	if t != nil {
		w.time(name, *t)
	}
}
