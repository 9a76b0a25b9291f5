package dispatcher

import (
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
)

// TestRoleSharesOf checks how the benchmarks split their process's CPU
// between clients, API and coordinator: by the CPU values of the samples
// labelled with each role, whatever else the samples carry; what has no
// role is "".
func TestRoleSharesOf(t *testing.T) {
	sample := func(cpu int64, roles ...string) *profile.Sample {
		s := &profile.Sample{Value: []int64{1, cpu}}
		if roles != nil {
			s.Label = map[string][]string{benchRoleLabel: roles, "other": {roleClient}}
		}
		return s
	}
	cpuTypes := []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}
	for _, tc := range []struct {
		name    string
		types   []*profile.ValueType
		samples []*profile.Sample
		shares  map[string]float64
		ok      bool
	}{
		{"clients and unlabelled", cpuTypes, []*profile.Sample{sample(30, roleClient), sample(50), sample(20, roleClient)},
			map[string]float64{roleClient: 0.5, "": 0.5}, true},
		{"every role", cpuTypes, []*profile.Sample{sample(10, roleAPI), sample(30, roleCoordinator), sample(40, roleClient), sample(20)},
			map[string]float64{roleAPI: 0.1, roleCoordinator: 0.3, roleClient: 0.4, "": 0.2}, true},
		{"only unlabelled", cpuTypes, []*profile.Sample{sample(10), sample(30)}, map[string]float64{"": 1}, true},
		{"another label named client is not a role", cpuTypes, []*profile.Sample{{Value: []int64{1, 10}, Label: map[string][]string{"other": {roleClient}}}},
			map[string]float64{"": 1}, true},
		{"no samples", cpuTypes, nil, nil, false},
		{"no cpu values", []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}, []*profile.Sample{sample(10, roleClient)}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shares, ok := roleSharesOf(&profile.Profile{SampleType: tc.types, Sample: tc.samples})
			assert.Equal(t, tc.ok, ok)
			assert.Len(t, shares, len(tc.shares))
			for role, want := range tc.shares {
				assert.InDelta(t, want, shares[role], 1e-9, "role %q", role)
			}
		})
	}
}
