package chart_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/operator"
)

// containerEnv is the env of the one container of Deployment key.
func containerEnv(t *testing.T, r rendered, key string) map[string]obj {
	t.Helper()
	d := r.objects[key]
	require.NotNil(t, d, "%s renders", key)
	cs := containers(get(d, "spec", "template", "spec").(obj))
	require.Len(t, cs, 1, "%s has one container", key)
	return envOf(cs[0])
}

// kubeletEnv resolves a rendered env as the kubelet would: literal values,
// Secret keys from secrets ("name/key"), and the pod's namespace.
func kubeletEnv(t *testing.T, env map[string]obj, secrets map[string]string) func(string) string {
	t.Helper()
	return func(name string) string {
		e, ok := env[name]
		if !ok {
			return ""
		}
		if v, ok := e["value"]; ok {
			return v.(string)
		}
		if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
			v, ok := secrets[str(ref, "name")+"/"+str(ref, "key")]
			require.True(t, ok, "%s: test has no value for Secret key %v", name, ref)
			return v
		}
		switch str(e, "valueFrom", "fieldRef", "fieldPath") {
		case "metadata.namespace":
			return namespace
		case "metadata.name":
			return "pod-0"
		}
		t.Fatalf("%s: unresolvable env %v", name, e)
		return ""
	}
}

// TestAPIServerRendersPlansAsTheOperator holds the chart to giving the API
// server (GET /v1/pools/{id}/plan) exactly the operator's render settings:
// for every variable operator.EnvVars marks Render, the two Deployments
// carry the same env entry (value, Secret reference or field reference),
// the server's environment enables plans the way `mpegflow serve` checks it
// (operator.PlannerFromEnv), and both environments load the same
// operator.Config.
func TestAPIServerRendersPlansAsTheOperator(t *testing.T) {
	t.Parallel()
	var render []string
	for _, v := range operator.EnvVars {
		if v.Render {
			render = append(render, v.Name)
		}
	}
	require.Contains(t, render, "MPEGFLOW_ENCODER_IMAGE", "operator.EnvVars marks the render variables")

	for name, values := range matrix(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, values)
			api := containerEnv(t, r, apiServerKey(r))
			opKey := operatorKey(r)
			if opKey == "" {
				// No operator: the server is given no operator settings and
				// answers plans with 503 rather than guessing.
				require.NotContains(t, api, "MPEGFLOW_ENCODER_IMAGE")
				pl, err := operator.PlannerFromEnv(kubeletEnv(t, api, chartSecrets()))
				require.NoError(t, err)
				require.Nil(t, pl, "without the operator the server shows no plans")
				return
			}
			op := containerEnv(t, r, opKey)
			for _, v := range render {
				if diff := cmp.Diff(op[v], api[v]); diff != "" {
					t.Errorf("%s differs between the operator and the API server (-operator +apiserver):\n%s", v, diff)
				}
			}
			// Run-only and secret operator settings stay with the operator
			// (MPEGFLOW_LOG_LEVEL aside: every role reads it).
			for _, v := range operator.EnvVars {
				if !v.Render && v.Name != "MPEGFLOW_LOG_LEVEL" {
					require.NotContains(t, api, v.Name, "the API server needs no %s", v.Name)
				}
			}

			secrets := chartSecrets()
			apiGetenv := kubeletEnv(t, api, secrets)
			pl, err := operator.PlannerFromEnv(apiGetenv)
			require.NoError(t, err, "`mpegflow serve` accepts the chart's environment for plans")
			require.NotNil(t, pl, "the API server's plan route is enabled")

			apiCfg, _, err := operator.FromEnv(apiGetenv)
			require.NoError(t, err)
			opCfg, _, err := operator.FromEnv(kubeletEnv(t, op, secrets))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(opCfg, apiCfg), "the API server renders with the operator's Config")
		})
	}
}

// apiServerKey and operatorKey find the two Deployments whatever the
// release's base name (fullnameOverride).
func apiServerKey(r rendered) string {
	for key, o := range r.objects {
		if str(o, "kind") == "Deployment" && str(o, "metadata", "labels", "app.kubernetes.io/component") == "server" {
			return key
		}
	}
	return ""
}

func operatorKey(r rendered) string {
	for key, o := range r.objects {
		if str(o, "kind") == "Deployment" && str(o, "metadata", "labels", "app.kubernetes.io/component") == "operator" {
			return key
		}
	}
	return ""
}

// chartSecrets are Secret values for every "name/key" the matrix's renders
// reference, as if the operator of the cluster had created them.
func chartSecrets() map[string]string {
	out := map[string]string{}
	secret := strings.Repeat("s", 32)
	url := "postgres://mpegflow@db/mpegflow"
	for _, name := range []string{"mpegflow-postgres", "mpegflow-postgres-operator", "mpegflow-redis", "mpegflow-server", "mpegflow-s3",
		"pg", "pg-ro", "pg-rw", "redis", "s3", "srv", "server", "s3-creds"} {
		for _, key := range []string{"url", "secret", "DATABASE_URL", "REDIS_URL", "MPEGFLOW_SERVER_SECRET", "accessKeyId", "secretAccessKey"} {
			v := secret
			if strings.Contains(strings.ToLower(key), "url") {
				v = url
			}
			out[name+"/"+key] = v
		}
	}
	return out
}

// TestEncoderDefaultRequests: operator.encoderRequests reach the encode
// pods' Job template through the operator's environment; by default a pool
// without resources gets CPU, memory and an ephemeral-storage request sized
// from the scratch limit.
func TestEncoderDefaultRequests(t *testing.T) {
	t.Parallel()
	pool := store.Pool{ID: "acme", PoolSettings: store.DefaultPoolSettings(), Status: "active"}
	pool.Name = "Acme"
	for name, tc := range map[string]struct {
		values map[string]any
		want   corev1.ResourceList
	}{
		"defaults": {want: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("51Gi"),
		}},
		"set": {
			values: map[string]any{"operator": map[string]any{"encoderRequests": map[string]any{"cpu": 2, "memory": "3Gi", "ephemeralStorage": "20Gi"}}},
			want: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("3Gi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
			},
		},
		"switched off": {
			values: map[string]any{"operator": map[string]any{"encoderRequests": map[string]any{"cpu": "0", "memory": "0", "ephemeralStorage": "0"}}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, tc.values)
			cfg, _, err := operator.FromEnv(kubeletEnv(t, containerEnv(t, r, operatorKey(r)), chartSecrets()))
			require.NoError(t, err)
			objs, err := operator.Render(cfg, pool)
			require.NoError(t, err)
			require.NotEmpty(t, objs.ScaledJobs)
			for _, sj := range objs.ScaledJobs {
				got := sj.Spec.JobTargetRef.Template.Spec.Containers[0].Resources.Requests
				if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: requests (-want +got):\n%s", sj.Name, diff)
				}
			}
		})
	}
	_, err := render(t, map[string]any{"operator": map[string]any{"encoderRequests": map[string]any{"memory": "2GB"}}})
	require.ErrorContains(t, err, "memory", "the schema refuses a quantity Kubernetes would not parse")
}
