package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/config"
)

func TestLoadPlatformPolicy(t *testing.T) {
	t.Parallel()
	custom := apiv1.DefaultPlatformPolicy()
	starter := custom.Plans["starter"]
	starter.DedicatedPools, starter.MaxPools, starter.MaxReplicasPerPool, starter.MaxReplicasPerOrg = true, 1, 4, 4
	custom.Plans["starter"] = starter
	doc, err := json.Marshal(custom)
	require.NoError(t, err)

	got, err := config.Load(env(map[string]string{"MPEGFLOW_PLATFORM_POLICY": string(doc)}))
	require.NoError(t, err)
	if diff := cmp.Diff(custom, got.PlatformPolicy); diff != "" {
		t.Errorf("policy mismatch (-want +got):\n%s", diff)
	}

	for name, tc := range map[string]struct{ value, want string }{
		"not json":       {`{plans`, "want the JSON of a platform policy"},
		"unknown field":  {`{"plans": {}, "gpus_for_all": true}`, "gpus_for_all"},
		"missing plan":   {strings.Replace(string(doc), `"free"`, `"gratis"`, 1), "plans.free: is required"},
		"negative count": {strings.Replace(string(doc), `"max_pools":1`, `"max_pools":-1`, 1), "plans.starter.max_pools"},
		"two documents":  {string(doc) + string(doc), "one JSON document"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(map[string]string{"MPEGFLOW_PLATFORM_POLICY": tc.value}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "MPEGFLOW_PLATFORM_POLICY")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
