package apiv1_test

import (
	"testing"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

func TestQuantityValue(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]float64{
		"500m": 0.5, "2": 2, "1.5": 1.5, "2000m": 2, "4Gi": 4 << 30, "4096Mi": 4 << 30, "1k": 1000, "512M": 512e6, "1Ti": 1 << 40,
		"": -1, "lots": -1, "1Pi": -1, "-1": -1,
	} {
		if got := apiv1.QuantityValue(q); got != want {
			t.Errorf("QuantityValue(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestDefaultPoliciesAreValid(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]apiv1.PlatformPolicy{"default": apiv1.DefaultPlatformPolicy(), "unrestricted": apiv1.UnrestrictedPlatformPolicy()} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckPoolCountsOnlyWhatItIsGiven(t *testing.T) {
	t.Parallel()
	rules := apiv1.DefaultPlatformPolicy().Plans["pro"] // 3 pools, 40 replicas per org
	pool := apiv1.DefaultPoolSettings()
	pool.Name, pool.MaxReplicas = "p", 20
	for name, tc := range map[string]struct {
		index  int
		others []apiv1.PoolSettings
		want   []string
	}{
		"alone":                  {0, nil, nil},
		"with one older":         {1, []apiv1.PoolSettings{pool}, nil},
		"third at the sum limit": {2, []apiv1.PoolSettings{pool, pool}, []string{apiv1.RuleMaxReplicasPerOrg}},
		"fourth pool":            {3, nil, []string{apiv1.RuleMaxPools}},
	} {
		vs := rules.CheckPool(pool, tc.index, tc.others)
		var got []string
		for _, v := range vs {
			got = append(got, v.Rule)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("%s: rules %v, want %v (%s)", name, got, tc.want, vs)
		}
	}
	// The shared plan of a free organization has no dedicated pools at all,
	// and an unknown plan gets no rules.
	for _, plan := range []string{"free", "gold"} {
		rules, _ := apiv1.DefaultPlatformPolicy().For("00000000-0000-0000-0000-000000000000", plan)
		if vs := rules.CheckPool(pool, 0, nil); len(vs) != 1 || vs[0].Rule != apiv1.RuleDedicatedPools || !vs[0].Capability() {
			t.Errorf("plan %s: %v", plan, vs)
		}
	}
}
