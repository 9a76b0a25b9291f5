package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// TestPoolPauseWindows: pause windows round-trip through the API; GET shows
// paused_by and the next edge (from the server's clock); a manual pause
// records paused_by=manual and a resume clears it.
func TestPoolPauseWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	// 2026-12-02 10:00 UTC: the next edge of a 22:00–06:00 Paris window is
	// 22:00 Paris, 21:00 UTC.
	f.clock.SetTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	windows := []any{map[string]any{"start": "0 22 * * *", "end": "0 6 * * *", "timezone": "Europe/Paris"}}
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "nightly", "pause_windows": windows}, &pool)
	assert.Equal(t, []apiv1.PauseWindow{{Start: "0 22 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}}, pool.PauseWindows)
	assert.Nil(t, pool.PausedBy)
	require.NotNil(t, pool.NextChange)
	assert.Equal(t, apiv1.PoolChange{At: time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC), Action: "pause"}, *pool.NextChange)

	var got apiv1.Pool
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+pool.ID+"/pause", admin, nil, &got)
	require.NotNil(t, got.PausedBy)
	assert.Equal(t, apiv1.PausedByManual, *got.PausedBy)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, f.keys[auth.Viewer], nil, &got)
	assert.Equal(t, apiv1.PausedByManual, *got.PausedBy)
	assert.Equal(t, "pause", got.NextChange.Action)
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+pool.ID+"/resume", admin, nil, &got)
	assert.Nil(t, got.PausedBy)

	// Inside the window the next edge resumes.
	f.clock.SetTime(time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC))
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &got)
	assert.Equal(t, apiv1.PoolChange{At: time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC), Action: "resume"}, *got.NextChange)

	// PATCH replaces the list; [] removes the windows and next_change.
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"pause_windows": []any{}}, &got)
	assert.Empty(t, got.PauseWindows)
	assert.Nil(t, got.NextChange)
	r := f.do(t, "GET", "/v1/pools/"+pool.ID, admin, nil)
	assert.Contains(t, string(r.Body), `"next_change":null`)
	assert.Contains(t, string(r.Body), `"paused_by":null`)
}

// TestPoolPauseWindowsValidation: bad windows answer 422 naming the field
// path, on create and on patch.
func TestPoolPauseWindowsValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "v"}, &pool)
	ok := map[string]any{"start": "0 22 * * *", "end": "0 6 * * *", "timezone": "UTC"}
	with := func(k, v string) map[string]any {
		w := map[string]any{}
		for kk, vv := range ok {
			w[kk] = vv
		}
		w[k] = v
		return w
	}
	tests := map[string]struct {
		windows []any
		fields  []string
	}{
		"bad cron":               {windows: []any{with("start", "0 24 * * *")}, fields: []string{"pause_windows[0].start"}},
		"four fields":            {windows: []any{with("end", "0 6 * *")}, fields: []string{"pause_windows[0].end"}},
		"seconds field":          {windows: []any{with("start", "0 0 22 * * *")}, fields: []string{"pause_windows[0].start"}},
		"descriptor":             {windows: []any{with("start", "@midnight")}, fields: []string{"pause_windows[0].start"}},
		"bad timezone":           {windows: []any{with("timezone", "Europe/Gotham")}, fields: []string{"pause_windows[0].timezone"}},
		"empty timezone":         {windows: []any{with("timezone", "")}, fields: []string{"pause_windows[0].timezone"}},
		"start is end":           {windows: []any{with("end", "0 22 * * *")}, fields: []string{"pause_windows[0].end"}},
		"second window bad":      {windows: []any{ok, with("start", "60 1 * * *")}, fields: []string{"pause_windows[1].start"}},
		"more than 20 windows":   {windows: slices.Repeat([]any{ok}, 21), fields: []string{"pause_windows"}},
		"both expressions wrong": {windows: []any{with("start", "x"), with("end", "y")}, fields: []string{"pause_windows[0].start", "pause_windows[1].end"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, req := range []struct{ method, path string }{{"POST", "/v1/pools"}, {"PATCH", "/v1/pools/" + pool.ID}} {
				r := f.do(t, req.method, req.path, admin, map[string]any{"name": "v", "pause_windows": tt.windows})
				require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s %s: %s", req.method, req.path, r.Body)
				got := r.fields(t)
				slices.Sort(got)
				assert.Equal(t, tt.fields, got, "%s %s", req.method, req.path)
				assert.NotContains(t, strings.ToLower(string(r.Body)), "robfig", "no library names in the detail")
			}
		})
	}
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"pause_windows": slices.Repeat([]any{ok}, 20)}, nil)
}

// TestPoolPlanShowsPauseWindows: the plan shows what the operator renders
// for a pool with pause windows: the windows on every ScaledJob and, once
// paused, KEDA's paused annotation and who paused it.
func TestPoolPlanShowsPauseWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{
		"name": "plan", "backfill_max_replicas": 1,
		"pause_windows": []any{map[string]any{"start": "0 22 * * *", "end": "0 6 * * *", "timezone": "Europe/Paris"}},
	}, &pool)
	annotations := func() []map[string]any {
		t.Helper()
		var got apiv1.Page[apiv1.PlanObject]
		f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID+"/plan", f.keys[auth.Viewer], nil, &got)
		var out []map[string]any
		for _, o := range got.Items {
			if o["kind"] == "ScaledJob" {
				a, _ := o["metadata"].(map[string]any)["annotations"].(map[string]any)
				out = append(out, a)
			}
		}
		require.Len(t, out, 2, "live and backfill")
		return out
	}
	windows := `[{"start":"0 22 * * *","end":"0 6 * * *","timezone":"Europe/Paris"}]`
	for _, a := range annotations() {
		assert.Equal(t, map[string]any{"mpegflow.io/pause-windows": windows}, a)
	}
	f.mustDo(t, http.StatusOK, "POST", "/v1/pools/"+pool.ID+"/pause", admin, nil, nil)
	for _, a := range annotations() {
		assert.Equal(t, map[string]any{"mpegflow.io/pause-windows": windows, "autoscaling.keda.sh/paused": "true", "mpegflow.io/paused-by": "manual"}, a)
	}
}
