package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

// testPolicy is small enough that every rule is easy to cross.
func testPolicy() apiv1.PlatformPolicy {
	pro := apiv1.PlanPolicy{
		DedicatedPools: true, MaxPools: 2, MaxReplicasPerPool: 10, MaxReplicasPerOrg: 15,
		MaxPrewarmedPerPool: 2, MaxPrewarmedPerOrg: 3,
		NodeSelectors: []string{"mpegflow.io/class=standard"},
		Tolerations:   []apiv1.Toleration{{Key: "dedicated", Effect: "NoSchedule"}},
		Resources:     apiv1.Resources{CPURequest: "2", MemoryLimit: "4Gi"},
	}
	ent := pro
	ent.GPU, ent.MaxGPUs = true, 4
	ent.NodeSelectors = []string{"mpegflow.io/class=standard", "cloud.google.com/gke-accelerator=*"}
	none := apiv1.PlanPolicy{NodeSelectors: []string{}, Tolerations: []apiv1.Toleration{}}
	return apiv1.PlatformPolicy{
		Plans:         map[string]apiv1.PlanPolicy{"free": none, "starter": none, "pro": pro, "enterprise": ent},
		Organizations: map[string]apiv1.PlanPolicy{},
	}
}

// policyFixture is a fixture whose policy is testPolicy and whose org A is
// on plan.
func policyFixture(t *testing.T, plan string) *fixture {
	t.Helper()
	f := newFixture(t)
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", f.keys[auth.SuperAdmin], testPolicy(), nil)
	f.setPlan(t, plan)
	return f
}

func (f *fixture) setPlan(t *testing.T, plan string) {
	t.Helper()
	_, err := f.store.UpdateOrg(t.Context(), f.orgA.ID, store.OrgPatch{Plan: &plan})
	require.NoError(t, err)
}

func TestPoolWritesOutsideThePolicyAreRefused(t *testing.T) {
	t.Parallel()
	pool := func(kv ...any) map[string]any {
		m := map[string]any{"name": "p", "max_replicas": 2}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := map[string]struct {
		plan   string
		before []map[string]any // created first, within the policy
		method string           // POST (default) or PATCH of before[0]
		body   map[string]any
		status int
		rule   string
		field  string
	}{
		"within the policy":              {plan: "pro", body: pool("min_replicas", 1, "max_replicas", 10), status: http.StatusCreated},
		"dedicated pools not on free":    {plan: "free", body: pool(), status: http.StatusForbidden, rule: apiv1.RuleDedicatedPools, field: "pool"},
		"dedicated pools not on starter": {plan: "starter", body: pool(), status: http.StatusForbidden, rule: apiv1.RuleDedicatedPools, field: "pool"},
		"max pools":                      {plan: "pro", before: []map[string]any{pool(), pool()}, body: pool(), status: http.StatusForbidden, rule: apiv1.RuleMaxPools, field: "pool"},
		"max replicas per pool":          {plan: "pro", body: pool("max_replicas", 11), status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxReplicasPerPool, field: "max_replicas"},
		"max replicas per org":           {plan: "pro", before: []map[string]any{pool("max_replicas", 10)}, body: pool("max_replicas", 6), status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxReplicasPerOrg, field: "max_replicas"},
		"backfill counts towards the org": {plan: "pro", before: []map[string]any{pool("max_replicas", 10, "backfill_max_replicas", 4)}, body: pool("max_replicas", 2),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxReplicasPerOrg, field: "max_replicas"},
		"max pre-warmed per pool": {plan: "pro", body: pool("min_replicas", 3, "max_replicas", 5), status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxPrewarmedPerPool, field: "min_replicas"},
		"cron windows pre-warm too": {plan: "pro", body: pool("max_replicas", 5, "cron_windows", []any{map[string]any{"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desired_replicas": 3}}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxPrewarmedPerPool, field: "cron_windows[0].desired_replicas"},
		"max pre-warmed per org": {plan: "pro", before: []map[string]any{pool("min_replicas", 2, "max_replicas", 3)}, body: pool("min_replicas", 2, "max_replicas", 3),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxPrewarmedPerOrg, field: "min_replicas"},
		"gpu not on pro":        {plan: "pro", body: pool("accelerator", "nvidia"), status: http.StatusForbidden, rule: apiv1.RuleGPU, field: "accelerator"},
		"gpu on enterprise":     {plan: "enterprise", body: pool("accelerator", "nvidia", "max_replicas", 4), status: http.StatusCreated},
		"gpu count":             {plan: "enterprise", body: pool("accelerator", "nvidia", "max_replicas", 5), status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxGPUs, field: "max_replicas"},
		"gpu count of the org":  {plan: "enterprise", before: []map[string]any{pool("accelerator", "nvidia", "max_replicas", 3)}, body: pool("accelerator", "nvidia", "max_replicas", 2), status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxGPUs, field: "max_replicas"},
		"node selector allowed": {plan: "pro", body: pool("node_selector", map[string]string{"mpegflow.io/class": "standard"}), status: http.StatusCreated},
		"node selector value not allowed": {plan: "pro", body: pool("node_selector", map[string]string{"mpegflow.io/class": "big"}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleNodeSelectors, field: "node_selector.mpegflow.io/class"},
		"node selector key not allowed": {plan: "pro", body: pool("node_selector", map[string]string{"topology.kubernetes.io/zone": "a"}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleNodeSelectors, field: "node_selector.topology.kubernetes.io/zone"},
		"node selector wildcard": {plan: "enterprise", body: pool("node_selector", map[string]string{"cloud.google.com/gke-accelerator": "nvidia-l4"}), status: http.StatusCreated},
		"toleration allowed":     {plan: "pro", body: pool("tolerations", []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "video", "effect": "NoSchedule"}}), status: http.StatusCreated},
		"toleration not allowed": {plan: "pro", body: pool("tolerations", []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "video", "effect": "NoExecute"}}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleTolerations, field: "tolerations[0]"},
		"tolerate everything not allowed": {plan: "pro", body: pool("tolerations", []any{map[string]any{"operator": "Exists"}}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleTolerations, field: "tolerations[0]"},
		"cpu request ceiling": {plan: "pro", body: pool("resources", map[string]any{"cpu_request": "2500m"}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleResources, field: "resources.cpu_request"},
		"memory limit ceiling": {plan: "pro", body: pool("resources", map[string]any{"memory_limit": "5Gi"}),
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleResources, field: "resources.memory_limit"},
		"resources at the ceiling": {plan: "pro", body: pool("resources", map[string]any{"cpu_request": "2000m", "memory_limit": "4096Mi", "cpu_limit": "64"}), status: http.StatusCreated},
		"patch above a ceiling": {plan: "pro", before: []map[string]any{pool()}, method: "PATCH", body: map[string]any{"max_replicas": 11},
			status: http.StatusUnprocessableEntity, rule: apiv1.RuleMaxReplicasPerPool, field: "max_replicas"},
		"patch to a gpu": {plan: "pro", before: []map[string]any{pool()}, method: "PATCH", body: map[string]any{"accelerator": "nvidia"},
			status: http.StatusForbidden, rule: apiv1.RuleGPU, field: "accelerator"},
		"patch within": {plan: "pro", before: []map[string]any{pool()}, method: "PATCH", body: map[string]any{"max_replicas": 10}, status: http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := policyFixture(t, "enterprise")
			admin := f.keys[auth.Admin]
			var ids []string
			for _, b := range tc.before {
				var p apiv1.Pool
				f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, b, &p)
				ids = append(ids, p.ID)
			}
			f.setPlan(t, tc.plan)
			var r response
			if tc.method == "PATCH" {
				r = f.do(t, "PATCH", "/v1/pools/"+ids[0], admin, tc.body)
			} else {
				r = f.do(t, "POST", "/v1/pools", admin, tc.body)
			}
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			if tc.rule == "" {
				return
			}
			p := r.problem(t)
			assert.Equal(t, "urn:mpegflow:problem:policy", p.Type)
			assert.Contains(t, p.Detail, tc.rule, "the detail names the rule")
			assert.Contains(t, p.Detail, "the "+tc.plan+" plan")
			var found bool
			for _, e := range p.Errors {
				if e.Field == tc.field && strings.HasPrefix(e.Detail, tc.rule+": ") {
					found = true
				}
			}
			assert.True(t, found, "errors name %s with rule %s: %+v", tc.field, tc.rule, p.Errors)
			var list apiv1.Page[apiv1.Pool]
			f.mustDo(t, http.StatusOK, "GET", "/v1/pools", admin, nil, &list)
			assert.Len(t, list.Items, 1+len(tc.before), "a refused pool is not stored")
		})
	}
}

func TestSuperAdminOverrideLetsAnOrganizationExceedItsPlan(t *testing.T) {
	t.Parallel()
	f := policyFixture(t, "starter")
	admin, super := f.keys[auth.Admin], f.keys[auth.SuperAdmin]
	gpuPool := map[string]any{"name": "gpu", "accelerator": "nvidia", "max_replicas": 2}

	r := f.do(t, "POST", "/v1/pools", admin, gpuPool)
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)

	pol := testPolicy()
	override := pol.Plans["enterprise"]
	override.MaxGPUs = 2
	pol.Organizations[f.orgA.ID.String()] = override
	var doc apiv1.PlatformPolicyDocument
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, pol, &doc)
	require.Contains(t, doc.Organizations, f.orgA.ID.String())

	var p apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, gpuPool, &p)
	assert.Nil(t, p.PolicyViolation)
	// The override replaces the plan's rules whole, its own ceilings included.
	r = f.do(t, "PATCH", "/v1/pools/"+p.ID, admin, map[string]any{"max_replicas": 3})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Contains(t, r.problem(t).Detail, "override")
	// Org B, also on starter, has no override.
	_, err := f.store.UpdateOrg(t.Context(), f.orgB.ID, store.OrgPatch{Plan: ptrTo("starter")})
	require.NoError(t, err)
	r = f.do(t, "POST", "/v1/pools", f.keyB, gpuPool)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
}

func ptrTo[T any](v T) *T { return &v }

func TestPlatformPolicyIsSuperAdminOnlyAndValidated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	super := f.keys[auth.SuperAdmin]

	var doc apiv1.PlatformPolicyDocument
	f.mustDo(t, http.StatusOK, "GET", "/v1/platform/policy", super, nil, &doc)
	assert.Equal(t, apiv1.UnrestrictedPlatformPolicy(), doc.PlatformPolicy, "the fixture's seed")
	assert.Nil(t, doc.UpdatedBy, "seeded, not PUT")
	_, err := f.db.Exec(t.Context(), `DELETE FROM platform_policy`)
	require.NoError(t, err)
	f.mustDo(t, http.StatusOK, "GET", "/v1/platform/policy", super, nil, &doc)
	assert.Equal(t, apiv1.DefaultPlatformPolicy(), doc.PlatformPolicy, "with none stored, the built-in default applies")
	r := f.do(t, "POST", "/v1/pools", f.keys[auth.Admin], map[string]any{"name": "p"})
	assert.Equal(t, http.StatusForbidden, r.Status, "and refuses a free organization's pool: %s", r.Body)

	for _, role := range []auth.Role{auth.Viewer, auth.Editor, auth.Admin, auth.Owner} {
		r := f.do(t, "GET", "/v1/platform/policy", f.keys[role], nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "GET as %s", role)
		r = f.do(t, "PUT", "/v1/platform/policy", f.keys[role], testPolicy())
		assert.Equal(t, http.StatusForbidden, r.Status, "PUT as %s", role)
	}

	bad := testPolicy()
	delete(bad.Plans, "free")
	bad.Plans["gold"] = apiv1.PlanPolicy{}
	pro := bad.Plans["pro"]
	pro.MaxPools = -1
	pro.NodeSelectors = []string{"no-equals-sign"}
	pro.Tolerations = []apiv1.Toleration{{Key: "a", Effect: "Sometimes"}}
	pro.Resources.CPULimit = "lots"
	bad.Plans["pro"] = pro
	bad.Organizations["not-an-id"] = apiv1.PlanPolicy{}
	r = f.do(t, "PUT", "/v1/platform/policy", super, bad)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.ElementsMatch(t, []string{"plans.free", "plans.gold", "plans.pro.max_pools", "plans.pro.node_selectors[0]",
		"plans.pro.tolerations[0].effect", "plans.pro.resources.cpu_limit", "organizations.not-an-id"}, r.fields(t))
	r = f.do(t, "PUT", "/v1/platform/policy", super, map[string]any{"plans": map[string]any{"free": map[string]any{"max_pools": "many"}}})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)

	// PUT replaces the whole policy: a rule left out is refused, never
	// read as 0 or false.
	var partial map[string]map[string]map[string]any
	raw, err := json.Marshal(testPolicy())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &partial))
	delete(partial["plans"]["pro"], "gpu")
	delete(partial["plans"]["enterprise"], "max_pools")
	r = f.do(t, "PUT", "/v1/platform/policy", super, partial)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.ElementsMatch(t, []string{"plans.pro.gpu", "plans.enterprise.max_pools"}, r.fields(t))

	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, testPolicy(), &doc)
	assert.Equal(t, testPolicy(), doc.PlatformPolicy)
	require.NotNil(t, doc.UpdatedBy)
	f.mustDo(t, http.StatusOK, "GET", "/v1/platform/policy", super, nil, &doc)
	assert.Equal(t, testPolicy(), doc.PlatformPolicy)
}

func TestPoolOutsideANewPolicyRecordsItsViolation(t *testing.T) {
	t.Parallel()
	f := policyFixture(t, "pro")
	admin, super := f.keys[auth.Admin], f.keys[auth.SuperAdmin]
	var p apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "big", "max_replicas": 10}, &p)
	require.Nil(t, p.PolicyViolation)

	stricter := testPolicy()
	pro := stricter.Plans["pro"]
	pro.MaxReplicasPerPool = 5
	stricter.Plans["pro"] = pro
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, stricter, nil)
	var got apiv1.Pool
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID, admin, nil, &got)
	require.NotNil(t, got.PolicyViolation, "the pool is outside the new policy")
	assert.Contains(t, *got.PolicyViolation, "max_replicas_per_pool (max_replicas): must be at most 5")
	require.NotNil(t, got.PolicyViolationAt)

	// The plan shows what the operator does with it: no ScaledJob, the
	// reason on the NetworkPolicy that stays.
	var plan apiv1.Page[apiv1.PlanObject]
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID+"/plan", admin, nil, &plan)
	var kinds []string
	for _, o := range plan.Items {
		kinds = append(kinds, o["kind"].(string))
		if o["kind"] == "NetworkPolicy" {
			ann, _ := o["metadata"].(map[string]any)["annotations"].(map[string]any)
			assert.Equal(t, *got.PolicyViolation, ann[operator.AnnotationPolicyViolation])
		}
	}
	assert.Equal(t, []string{"Secret", "TriggerAuthentication", "NetworkPolicy"}, kinds)
	since := *got.PolicyViolationAt

	// A later change that keeps it outside keeps the time.
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, stricter, nil)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID, admin, nil, &got)
	require.NotNil(t, got.PolicyViolationAt)
	assert.True(t, since.Equal(*got.PolicyViolationAt))

	// A plan change records too: free has no dedicated pools.
	orgPath := "/v1/admin/organizations/" + f.orgA.ID.String()
	f.mustDo(t, http.StatusOK, "PATCH", orgPath, super, map[string]any{"plan": "free"}, nil)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID, admin, nil, &got)
	require.NotNil(t, got.PolicyViolation)
	assert.Contains(t, *got.PolicyViolation, "dedicated_pools")
	f.mustDo(t, http.StatusOK, "PATCH", orgPath, super, map[string]any{"plan": "pro"}, nil)

	// Fixing the pool clears it.
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+p.ID, admin, map[string]any{"max_replicas": 5}, &got)
	assert.Nil(t, got.PolicyViolation)
	assert.Nil(t, got.PolicyViolationAt)

	// So does relaxing the policy.
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+p.ID, admin, map[string]any{"name": "big again"}, nil)
	pro.MaxReplicasPerPool = 1
	stricter.Plans["pro"] = pro
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, stricter, nil)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID, admin, nil, &got)
	require.NotNil(t, got.PolicyViolation)
	f.mustDo(t, http.StatusOK, "PUT", "/v1/platform/policy", super, testPolicy(), nil)
	f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+p.ID, admin, nil, &got)
	assert.Nil(t, got.PolicyViolation)
}

func TestTheSharedPoolIsNotSubjectToTenantLimits(t *testing.T) {
	t.Parallel()
	f := policyFixture(t, "free")
	var p apiv1.Pool
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/pools/"+apiv1.DefaultPoolID, f.keys[auth.SuperAdmin], map[string]any{"max_replicas": 500, "min_replicas": 20}, &p)
	assert.Equal(t, 500, p.MaxReplicas)
	assert.Nil(t, p.PolicyViolation)
}
