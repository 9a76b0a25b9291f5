package operator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
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

// TestPlanShowsEgress: the plan (`mpegflow pools plan`, GET
// /v1/pools/{id}/plan) carries the rendered NetworkPolicy whole, so an
// operator reads there which DNS, object storage and public ranges encode
// pods may reach, except lists included.
func TestPlanShowsEgress(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.EncoderAllowHTTP = true
	cfg.DNSCIDRs = []string{"169.254.20.10/32"}
	cfg.InClusterS3Namespace, cfg.InClusterS3PodLabels = "minio", map[string]string{"app": "minio"}
	out, err := Plan(cfg, testPool("acme"))
	require.NoError(t, err)
	var np *networkingv1.NetworkPolicy
	for _, d := range strings.Split(string(out), "---\n") {
		if strings.Contains(d, "kind: NetworkPolicy\n") {
			np = &networkingv1.NetworkPolicy{}
			require.NoError(t, yaml.UnmarshalStrict([]byte(d), np))
		}
	}
	require.NotNil(t, np, "the plan has the NetworkPolicy")
	want, err := Render(cfg, testPool("acme"))
	require.NoError(t, err)
	if diff := cmp.Diff(want.NetworkPolicy.Spec.Egress, np.Spec.Egress); diff != "" {
		t.Errorf("plan egress (-rendered +plan):\n%s", diff)
	}
	for _, s := range []string{"cidr: 0.0.0.0/0", "cidr: ::/0", "- 169.254.0.0/16", "- fc00::/7", "cidr: 169.254.20.10/32", "port: 80", "port: 9000"} {
		require.Contains(t, string(out), s)
	}
}
