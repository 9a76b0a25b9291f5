package dispatcher

import (
	"testing"

	"github.com/google/pprof/profile"
)

// TestClientShareOf checks how the benchmarks split their process's CPU
// between servers and clients: by the CPU values of the samples labelled
// as clients, whatever else the samples carry.
func TestClientShareOf(t *testing.T) {
	sample := func(cpu int64, roles ...string) *profile.Sample {
		s := &profile.Sample{Value: []int64{1, cpu}}
		if roles != nil {
			s.Label = map[string][]string{benchRoleLabel: roles, "other": {"client"}}
		}
		return s
	}
	cpuTypes := []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}
	for _, tc := range []struct {
		name    string
		types   []*profile.ValueType
		samples []*profile.Sample
		share   float64
		ok      bool
	}{
		{"clients and servers", cpuTypes, []*profile.Sample{sample(30, "client"), sample(50), sample(20, "client")}, 0.5, true},
		{"only servers", cpuTypes, []*profile.Sample{sample(10), sample(30)}, 0, true},
		{"another role is a server's", cpuTypes, []*profile.Sample{sample(10, "server"), sample(30, "client")}, 0.75, true},
		{"no samples", cpuTypes, nil, 0, false},
		{"no cpu values", []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}, []*profile.Sample{sample(10, "client")}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			share, ok := clientShareOf(&profile.Profile{SampleType: tc.types, Sample: tc.samples})
			if share != tc.share || ok != tc.ok {
				t.Fatalf("clientShareOf = %v, %v; want %v, %v", share, ok, tc.share, tc.ok)
			}
		})
	}
}
