package apiserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

const panicSecret = "s3cr3t-panic-value"

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, buf *lockedBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "log line %q", l)
		out = append(out, m)
	}
	return out
}

func panicLine(t *testing.T, buf *lockedBuffer) map[string]any {
	t.Helper()
	for _, m := range logLines(t, buf) {
		if m["level"] == "ERROR" && m["panic"] != nil {
			return m
		}
	}
	require.Failf(t, "no panic logged", "logs: %s", buf.String())
	return nil
}

// TestRecoverPanics: a handler's panic is a 500 problem naming the request
// id, never the panic value or the stack; the log line has both and the
// request id; the app keeps answering.
func TestRecoverPanics(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	log := slog.New(requestIDHandler{slog.NewJSONHandler(&buf, nil)})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(recoverPanics(log))
	app.Get("/boom", func(c *fiber.Ctx) error {
		c.Set("X-Half-Written", "yes")
		panic(panicSecret)
	})
	app.Get("/ok", func(c *fiber.Ctx) error { return c.SendString("ok") })

	for name, tc := range map[string]struct {
		sent     string
		echoedAs func(t *testing.T, rid string)
	}{
		"caller's id":        {sent: "req-42.abc_DEF", echoedAs: func(t *testing.T, rid string) { assert.Equal(t, "req-42.abc_DEF", rid) }},
		"no id":              {echoedAs: func(t *testing.T, rid string) { assert.Len(t, rid, 36) }},
		"id with a space":    {sent: "a b", echoedAs: func(t *testing.T, rid string) { assert.Len(t, rid, 36) }},
		"id with non-ASCII":  {sent: "caf\u00e9", echoedAs: func(t *testing.T, rid string) { assert.Len(t, rid, 36) }},
		"id over 64 bytes":   {sent: strings.Repeat("x", 65), echoedAs: func(t *testing.T, rid string) { assert.Len(t, rid, 36) }},
		"id of 64 bytes":     {sent: strings.Repeat("y", 64), echoedAs: func(t *testing.T, rid string) { assert.Equal(t, strings.Repeat("y", 64), rid) }},
		"id with a tab char": {sent: "a\tb", echoedAs: func(t *testing.T, rid string) { assert.Len(t, rid, 36) }},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/boom", nil)
			if tc.sent != "" {
				req.Header.Set(requestIDHeader, tc.sent)
			}
			resp, err := app.Test(req, -1)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			require.Equal(t, http.StatusInternalServerError, resp.StatusCode, "body: %s", body)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			rid := resp.Header.Get(requestIDHeader)
			tc.echoedAs(t, rid)
			assert.Empty(t, resp.Header.Get("X-Half-Written"), "what the handler wrote before panicking is dropped")
			var p Problem
			require.NoError(t, json.Unmarshal(body, &p), "body: %s", body)
			assert.Equal(t, Problem{
				Type: "urn:mpegflow:problem:internal", Title: "Internal Server Error", Status: 500,
				Detail: "the server failed to handle the request; it has been logged", Instance: "/boom", RequestID: rid,
			}, p)
			assert.NotContains(t, string(body), panicSecret)
			assert.NotContains(t, string(body), "goroutine")
			assert.NotContains(t, string(body), ".go:")
		})
	}

	var line map[string]any
	for _, m := range logLines(t, &buf) {
		if m["request_id"] == "req-42.abc_DEF" {
			line = m
		}
	}
	require.NotNil(t, line, "the panic is logged with the request id: %s", buf.String())
	assert.Equal(t, "ERROR", line["level"])
	assert.Equal(t, panicSecret, line["panic"])
	assert.Equal(t, "GET", line["method"])
	assert.Equal(t, "/boom", line["path"])
	assert.Contains(t, line["stack"], "recover_test.go", "the stack reaches the panicking handler")

	resp, err := app.Test(httptest.NewRequest("GET", "/ok", nil), -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the app answers after a panic")
}

// panickingPlanner panics when asked for a plan, as a bug in a handler's
// dependency would.
type panickingPlanner struct{}

func (panickingPlanner) PlanObjects(store.Pool) ([]map[string]any, error) { panic(panicSecret) }
func (panickingPlanner) PlanYAML(store.Pool) ([]byte, error)              { panic(panicSecret) }

// TestServerRecoversPanics: the real server has recoverPanics installed
// before everything else: a panicking handler answers the 500 problem with
// the request id, the log has the stack, and the next request is served.
func TestServerRecoversPanics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	srv, err := New(Config{Guard: testGuard(), Planner: panickingPlanner{}}, f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), log)
	require.NoError(t, err)
	f.srv = srv
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "planned"}, &pool)

	r := f.raw(t, "GET", "/v1/pools/"+pool.ID+"/plan", admin, nil, map[string]string{requestIDHeader: "ticket-7"})
	require.Equal(t, http.StatusInternalServerError, r.Status, "body: %s", r.Body)
	assert.Equal(t, "ticket-7", r.Header.Get(requestIDHeader))
	p := r.problem(t)
	assert.Equal(t, "urn:mpegflow:problem:internal", p.Type)
	assert.Equal(t, "ticket-7", p.RequestID)
	assert.NotContains(t, string(r.Body), panicSecret)

	line := panicLine(t, &buf)
	assert.Equal(t, "ticket-7", line["request_id"])
	assert.Equal(t, "/v1/pools/"+pool.ID+"/plan", line["path"])
	assert.Contains(t, line["stack"], "poolPlan", "the stack reaches the handler")

	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, nil)
	for _, m := range logLines(t, &buf) {
		if m["msg"] == "request" && m["route"] == "/v1/pools/:id" {
			assert.NotEmpty(t, m["request_id"], "access log lines carry the request id")
		}
	}
}
