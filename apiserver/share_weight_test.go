package apiserver

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestShareWeight: only a platform administrator sets an organization's
// fair-share weight; the organization reads its override and effective
// weight; the next job it submits is queued with that weight.
func TestShareWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sa := f.keys[auth.SuperAdmin]
	path := "/v1/admin/organizations/" + f.orgB.ID.String()

	var org apiv1.Organization
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization", f.keyB, nil, &org)
	assert.Nil(t, org.ShareWeight, "no override: the plan's default")
	assert.Equal(t, apiv1.PlanShareWeights[org.Plan], org.EffectiveShareWeight)

	for name, tc := range map[string]struct {
		key    string
		body   string
		status int
		want   *int // ShareWeight after, when status is 200
		eff    int
	}{
		"owner of the organization": {key: f.keyB, body: `{"share_weight":50}`, status: http.StatusForbidden},
		"admin of another":          {key: f.keys[auth.Admin], body: `{"share_weight":50}`, status: http.StatusForbidden},
		"below the range":           {key: sa, body: `{"share_weight":0}`, status: http.StatusUnprocessableEntity},
		"above the range":           {key: sa, body: `{"share_weight":101}`, status: http.StatusUnprocessableEntity},
		"nothing to change":         {key: sa, body: `{}`, status: http.StatusUnprocessableEntity},
		"unknown plan":              {key: sa, body: `{"plan":"platinum"}`, status: http.StatusUnprocessableEntity},
		"owner changing the plan":   {key: f.keyB, body: `{"plan":"enterprise"}`, status: http.StatusForbidden},
		"not a number":              {key: sa, body: `{"share_weight":"3"}`, status: http.StatusUnprocessableEntity},
	} {
		r := f.raw(t, "PATCH", path, tc.key, []byte(tc.body), nil)
		assert.Equal(t, tc.status, r.Status, "%s: %s", name, r.Body)
	}
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization", f.keyB, nil, &org)
	assert.Nil(t, org.ShareWeight, "refused patches changed nothing")

	r := f.raw(t, "PATCH", "/v1/admin/organizations/"+store.DefaultPoolID, sa, []byte(`{"share_weight":3}`), nil)
	assert.Equal(t, http.StatusNotFound, r.Status, "not an organization id")

	f.mustDo(t, http.StatusOK, "PATCH", path, sa, map[string]any{"share_weight": 3}, &org)
	require.NotNil(t, org.ShareWeight)
	assert.Equal(t, 3, *org.ShareWeight)
	assert.Equal(t, 3, org.EffectiveShareWeight)
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization", f.keyB, nil, &org)
	assert.Equal(t, 3, org.EffectiveShareWeight, "the organization reads it")

	job := f.submitJob(t, f.keyB, urlJob())
	w, err := f.rdb.HGet(t.Context(), f.queue.Keys().Shares(job.PoolID, job.Lane), "w:"+f.orgB.ID.String()).Int()
	require.NoError(t, err)
	assert.Equal(t, 3, w, "the job is queued with the organization's weight")

	f.mustDo(t, http.StatusOK, "PATCH", path, sa, map[string]any{"share_weight": nil}, &org)
	assert.Nil(t, org.ShareWeight, "null: back to the plan's default")
	assert.Equal(t, apiv1.PlanShareWeights[org.Plan], org.EffectiveShareWeight)

	// The plan is the administrator's to change, with the weight or alone;
	// a weight change leaves the plan, a plan change leaves the weight.
	f.mustDo(t, http.StatusOK, "PATCH", path, sa, map[string]any{"plan": "enterprise", "share_weight": 9}, &org)
	assert.Equal(t, "enterprise", org.Plan)
	require.NotNil(t, org.ShareWeight)
	assert.Equal(t, 9, *org.ShareWeight)
	f.mustDo(t, http.StatusOK, "PATCH", path, sa, map[string]any{"plan": "free"}, &org)
	assert.Equal(t, "free", org.Plan)
	require.NotNil(t, org.ShareWeight, "a plan change keeps the override")
	assert.Equal(t, 9, *org.ShareWeight)
	var b apiv1.Billing
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization/billing", f.keyB, nil, &b)
	assert.Equal(t, "free", b.Plan, "the organization reads its new plan")
}
