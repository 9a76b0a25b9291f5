package chart_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/config"
)

// serverPolicy is the platform policy the rendered server reads from its
// environment, parsed as `mpegflow serve` parses it.
func serverPolicy(t *testing.T, values map[string]any) apiv1.PlatformPolicy {
	t.Helper()
	r := mustRender(t, values)
	d := r.objects["Deployment/mf-mpegflow"]
	require.NotNil(t, d)
	env := envOf(containers(get(d, "spec", "template", "spec").(obj))[0])
	require.Contains(t, env, "MPEGFLOW_PLATFORM_POLICY")
	cfg, err := config.Load(func(name string) string {
		if name == "MPEGFLOW_PLATFORM_POLICY" {
			return str(env[name], "value")
		}
		return ""
	})
	require.NoError(t, err, "serve accepts the chart's platformPolicy")
	return cfg.PlatformPolicy
}

func TestPlatformPolicyValues(t *testing.T) {
	t.Parallel()
	t.Run("the default is the built-in policy", func(t *testing.T) {
		t.Parallel()
		if diff := cmp.Diff(apiv1.DefaultPlatformPolicy(), serverPolicy(t, nil)); diff != "" {
			t.Errorf("values.yaml's platformPolicy and apiv1.DefaultPlatformPolicy differ (-built-in +chart):\n%s", diff)
		}
	})
	t.Run("a plan and an override", func(t *testing.T) {
		t.Parallel()
		const org = "0b9e8d2c-4f5a-4c1e-9a7b-3d2e1f0a9b8c"
		got := serverPolicy(t, map[string]any{"platformPolicy": map[string]any{
			"plans": map[string]any{"starter": map[string]any{"dedicated_pools": true, "max_pools": 1, "max_replicas_per_pool": 5, "max_replicas_per_org": 5}},
			"organizations": map[string]any{org: map[string]any{"dedicated_pools": true, "max_pools": 2, "gpu": true, "max_gpus": 4,
				"node_selectors": []any{"cloud.google.com/gke-accelerator=nvidia-l4"}, "tolerations": []any{map[string]any{"key": "nvidia.com/gpu", "effect": "NoSchedule"}}}},
		}})
		starter := got.Plans["starter"]
		require.True(t, starter.DedicatedPools)
		require.Equal(t, 1, starter.MaxPools)
		require.Equal(t, 5, starter.MaxReplicasPerPool)
		require.Equal(t, apiv1.DefaultPlatformPolicy().Plans["pro"], got.Plans["pro"], "values merge: the other plans keep their defaults")
		require.Equal(t, apiv1.PlanPolicy{DedicatedPools: true, MaxPools: 2, GPU: true, MaxGPUs: 4,
			NodeSelectors: []string{"cloud.google.com/gke-accelerator=nvidia-l4"}, Tolerations: []apiv1.Toleration{{Key: "nvidia.com/gpu", Effect: "NoSchedule"}}},
			got.Organizations[org])
	})
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"typo in a rule":     {map[string]any{"plans": map[string]any{"pro": map[string]any{"max_pool": 3}}}, "max_pool"},
		"negative maximum":   {map[string]any{"plans": map[string]any{"pro": map[string]any{"max_pools": -1}}}, "max_pools"},
		"unknown plan":       {map[string]any{"plans": map[string]any{"gold": map[string]any{}}}, "gold"},
		"override not an id": {map[string]any{"organizations": map[string]any{"acme": map[string]any{}}}, "acme"},
		"bad quantity":       {map[string]any{"plans": map[string]any{"pro": map[string]any{"resources": map[string]any{"cpu_limit": "lots"}}}}, "cpu_limit"},
		"bad toleration":     {map[string]any{"plans": map[string]any{"pro": map[string]any{"tolerations": []any{map[string]any{"effect": "Sometimes"}}}}}, "effect"},
		"selector without =": {map[string]any{"plans": map[string]any{"pro": map[string]any{"node_selectors": []any{"gpu"}}}}, "node_selectors"},
	} {
		t.Run("schema refuses "+name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, map[string]any{"platformPolicy": tc.values})
			require.Error(t, err)
			require.Contains(t, err.Error(), "values don't meet the specifications of the schema")
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
