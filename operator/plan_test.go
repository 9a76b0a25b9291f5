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

// TestPlannerFromEnv is the gate of `mpegflow serve`'s plan route: no
// planner without MPEGFLOW_ENCODER_IMAGE, an error naming what is missing
// when it is set alone, and the operator's Config when the environment is
// complete.
func TestPlannerFromEnv(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	delete(env, "MPEGFLOW_ENCODER_IMAGE")
	pl, err := PlannerFromEnv(func(name string) string { return env[name] })
	require.NoError(t, err)
	require.Nil(t, pl, "without the encoder image the server shows no plans")

	pl, err = PlannerFromEnv(func(name string) string {
		return map[string]string{"MPEGFLOW_ENCODER_IMAGE": "encoder:1", "DATABASE_URL": "postgres://db/mpegflow"}[name]
	})
	require.ErrorContains(t, err, "Coordinator")
	require.Nil(t, pl)

	env = baseEnv()
	getenv := func(name string) string { return env[name] }
	pl, err = PlannerFromEnv(getenv)
	require.NoError(t, err)
	require.NotNil(t, pl)
	cfg, _, err := FromEnv(getenv)
	require.NoError(t, err)
	require.Equal(t, cfg, pl.cfg, "the planner renders with the operator's Config")
}
