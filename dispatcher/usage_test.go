package dispatcher

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestUsageMatchesFinishedJobs: jobs completed with known usage on CPU and
// GPU, one failed and one cancelled; GET /v1/organization/usage reports
// today's totals exactly, and mpegflow_encode_seconds_total carries the
// encode seconds per organization and accelerator.
func TestUsageMatchesFinishedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	in := e.start(Config{})
	w := e.worker(in.addr, store.DefaultPoolID)
	usages := []*coordinatorv1.Usage{
		{EncodeSeconds: 12.5, OutputSeconds: 90, Accelerator: "cpu"},
		{EncodeSeconds: 30, OutputSeconds: 600, Accelerator: "cpu"},
		{EncodeSeconds: 8, OutputSeconds: 120, Accelerator: "nvidia", GpuSeconds: 7.5},
	}
	ids := e.submit(store.DefaultPoolID, len(usages)+2)
	for i, u := range usages {
		j := w.mustClaim(t, "pod")
		_, err := w.client.Complete(w.ctx(ctx, j.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: j.GetId(), Usage: u})
		require.NoError(t, err, "job %d", i)
	}
	_, err := w.fail(ctx, w.mustClaim(t, "pod"), "not a video", false)
	require.NoError(t, err)
	_, err = e.store.CancelJob(ctx, e.org.ID, ids[len(ids)-1])
	require.NoError(t, err)

	api, err := apiserver.New(apiserver.Config{}, e.store, e.queue, e.objects, events.NewBus(e.queue, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	today := time.Now().UTC().Format(time.DateOnly)
	req := httptest.NewRequest(http.MethodGet, "/v1/organization/usage?from="+today+"&to="+today, nil)
	req.Header.Set("Authorization", "Bearer "+e.ownerKey)
	resp, err := api.App().Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var got struct {
		From, To string
		Days     []apiv1.UsageDay
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Days, 1, "%s", body)
	d := got.Days[0]
	assert.Equal(t, today, d.Day.Format(time.DateOnly))
	assert.EqualValues(t, 3, d.JobsCompleted)
	assert.EqualValues(t, 1, d.JobsFailed)
	assert.EqualValues(t, 1, d.JobsCancelled)
	assert.InDelta(t, 12.5+30+8, d.EncodeSeconds, 1e-9)
	assert.InDelta(t, 7.5, d.GPUSeconds, 1e-9)
	assert.InDelta(t, (90.0+600+120)/60, d.OutputMinutes, 1e-9)

	org := e.org.ID.String()
	assert.InDelta(t, 42.5, mustMetric(t, in.metrics.Registry, "mpegflow_encode_seconds_total", map[string]string{"org_id": org, "accelerator": "cpu"}), 1e-9)
	assert.InDelta(t, 8.0, mustMetric(t, in.metrics.Registry, "mpegflow_encode_seconds_total", map[string]string{"org_id": org, "accelerator": "nvidia"}), 1e-9)

	// A range before today is empty, not an error.
	req = httptest.NewRequest(http.MethodGet, "/v1/organization/usage?from=2020-01-01&to=2020-01-31", nil)
	req.Header.Set("Authorization", "Bearer "+e.ownerKey)
	resp2, err := api.App().Test(req, -1)
	require.NoError(t, err)
	defer resp2.Body.Close()
	body, _ = io.ReadAll(resp2.Body)
	assert.JSONEq(t, `{"from":"2020-01-01","to":"2020-01-31","days":[]}`, string(body))
}
