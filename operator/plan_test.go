package operator

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/internal/auth"
)

func TestPlanPrintsEveryObjectRedacted(t *testing.T) {
	t.Parallel()
	out, err := Plan(testConfig(), testPool("acme"))
	require.NoError(t, err)
	require.NotContains(t, string(out), auth.WorkerToken(testSecret, "acme"), "a plan never shows the worker token")
	docs := strings.Split(string(out), "---\n")
	var kinds []string
	for _, d := range docs {
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(d), &m))
		kinds = append(kinds, m.Kind+"/"+m.Metadata.Name)
	}
	require.Equal(t, []string{
		"Secret/mpegflow-pool-acme-worker",
		"TriggerAuthentication/mpegflow-pool-acme-redis",
		"NetworkPolicy/mpegflow-pool-acme",
		"ScaledJob/mpegflow-pool-acme",
		"ScaledJob/mpegflow-pool-acme-backfill",
	}, kinds, "apply order")
	require.Contains(t, string(out), "token: "+Redacted)
	require.NotContains(t, string(out), "creationTimestamp", "no null fields in an apply configuration")
	require.NotContains(t, string(out), "status:")
}

func TestNewPlannerValidatesAndRendersLikePlan(t *testing.T) {
	t.Parallel()
	bad := testConfig()
	bad.Image = ""
	_, err := NewPlanner(bad)
	require.ErrorContains(t, err, "Image")

	pl, err := NewPlanner(testConfig())
	require.NoError(t, err)
	want, err := Plan(testConfig(), testPool("acme"))
	require.NoError(t, err)
	got, err := pl.PlanYAML(testPool("acme"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	objs, err := pl.PlanObjects(testPool("acme"))
	require.NoError(t, err)
	fromObjs, err := PlanYAML(objs)
	require.NoError(t, err)
	require.Equal(t, string(want), string(fromObjs), "the JSON objects and the YAML are the same plan")
}
