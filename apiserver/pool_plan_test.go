package apiserver

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

// testPlanSecret signs the worker tokens of the fixture's plans.
var testPlanSecret = []byte("plan-test-secret-0123456789abcdef0123456789")

// testPlanConfig is the operator configuration the fixture's server renders
// plans with.
func testPlanConfig() operator.Config {
	return operator.Config{
		Namespace:    "encoders",
		Image:        "registry.example/mpegflow-encoder:1.2.3",
		Coordinator:  "mpegflow.mpegflow.svc:50051",
		RedisAddress: "redis.mpegflow.svc:6379",
		ServerSecret: testPlanSecret,
	}
}

func TestPoolPlanIsWhatTheOperatorApplies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", f.keys[auth.Admin], map[string]any{
		"name": "plan", "max_replicas": 7, "backfill_max_replicas": 2, "polling_interval_seconds": 3,
	}, &pool)
	row, err := f.store.GetPool(t.Context(), store.PoolScope{OrgID: f.orgA.ID}, pool.ID)
	require.NoError(t, err)
	token := auth.WorkerToken(testPlanSecret, pool.ID)
	path := "/v1/pools/" + pool.ID + "/plan"

	// JSON (the default): the operator's objects, in apply order.
	r := f.do(t, "GET", path, f.keys[auth.Viewer], nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.NotContains(t, string(r.Body), token, "a plan never shows the worker token")
	var got apiv1.Page[apiv1.PlanObject]
	r.json(t, &got)
	var kinds []string
	for _, o := range got.Items {
		kinds = append(kinds, o["kind"].(string)+"/"+o["metadata"].(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{
		"Secret/" + operator.SecretName(pool.ID),
		"TriggerAuthentication/" + operator.TriggerAuthName(pool.ID),
		"NetworkPolicy/" + operator.NetworkPolicyName(pool.ID),
		"ScaledJob/" + operator.ScaledJobName(pool.ID, apiv1.LaneLive),
		"ScaledJob/" + operator.ScaledJobName(pool.ID, apiv1.LaneBackfill),
	}, kinds)
	assert.Equal(t, map[string]any{operator.WorkerTokenKey: operator.Redacted}, got.Items[0]["data"])
	spec := got.Items[3]["spec"].(map[string]any)
	assert.EqualValues(t, 7, spec["maxReplicaCount"])
	assert.EqualValues(t, 3, spec["pollingInterval"])

	// YAML: byte for byte what `mpegflow pools plan` prints for the row.
	want, err := operator.Plan(testPlanConfig(), row)
	require.NoError(t, err)
	r = f.raw(t, "GET", path, f.keys[auth.Viewer], nil, map[string]string{"Accept": "application/yaml"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "application/yaml", r.Header.Get("Content-Type"))
	assert.Equal(t, string(want), string(r.Body))
	assert.NotContains(t, string(r.Body), token)

	// A tuning change shows in the next plan.
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, f.keys[auth.Admin], map[string]any{"max_replicas": 9}, nil)
	f.mustDo(t, http.StatusOK, "GET", path, f.keys[auth.Viewer], nil, &got)
	assert.EqualValues(t, 9, got.Items[3]["spec"].(map[string]any)["maxReplicaCount"])

	// Everyone may read the shared pool's plan; nobody another org's, nor a
	// pool that does not exist.
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+store.DefaultPoolID+"/plan", f.keyB, nil, &got)
	assert.Equal(t, "ScaledJob", got.Items[3]["kind"])
	r = f.do(t, "GET", path, f.keyB, nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
	assert.NotContains(t, string(r.Body), pool.ID+"-worker")
	r = f.do(t, "GET", "/v1/pools/nope/plan", f.keys[auth.Viewer], nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
	assert.Equal(t, problemPrefix+"not-found", r.problem(t).Type)
}

func TestPoolPlanWithoutOperatorConfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv, err := New(Config{}, f.store, f.queue, f.objects, events.NewBus(f.queue, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f.srv = srv
	r := f.do(t, "GET", "/v1/pools/"+store.DefaultPoolID+"/plan", f.keys[auth.Viewer], nil)
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	p := r.problem(t)
	assert.Equal(t, problemPrefix+"plan-unavailable", p.Type)
	assert.Contains(t, p.Detail, "MPEGFLOW_ENCODER_IMAGE")
}

// TestPoolPlanPreview: the plan of an edit before it is saved is the plan
// the saved edit gets, checked as the edit is, and saves nothing.
func TestPoolPlanPreview(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "preview", "max_replicas": 4}, &pool)
	path := "/v1/pools/" + pool.ID + "/plan"
	maxReplicas := func(p apiv1.Page[apiv1.PlanObject]) any {
		return p.Items[3]["spec"].(map[string]any)["maxReplicaCount"]
	}

	var preview, saved apiv1.Page[apiv1.PlanObject]
	f.mustDo(t, http.StatusOK, "POST", path, admin, map[string]any{"max_replicas": 11, "polling_interval_seconds": 9}, &preview)
	assert.EqualValues(t, 11, maxReplicas(preview))
	var now apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &now)
	assert.Equal(t, 4, now.MaxReplicas, "a preview saves nothing")
	assert.Equal(t, pool.UpdatedAt, now.UpdatedAt)
	f.mustDo(t, http.StatusOK, "GET", path, f.keys[auth.Viewer], nil, &saved)
	assert.EqualValues(t, 4, maxReplicas(saved))

	// Saved, the edit's plan is the preview's, object for object.
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+pool.ID, admin, map[string]any{"max_replicas": 11, "polling_interval_seconds": 9}, nil)
	f.mustDo(t, http.StatusOK, "GET", path, f.keys[auth.Viewer], nil, &saved)
	assert.Equal(t, preview.Items, saved.Items)

	// An invalid edit is refused as PATCH refuses it; an Editor may not
	// preview; another organization's pool is not found.
	r := f.do(t, "POST", path, admin, map[string]any{"min_replicas": 5, "max_replicas": 2})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	r = f.do(t, "POST", path, f.keys[auth.Editor], map[string]any{"max_replicas": 3})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	r = f.do(t, "POST", path, f.keyB, map[string]any{"max_replicas": 3})
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &now)
	assert.Equal(t, 11, now.MaxReplicas)
}
