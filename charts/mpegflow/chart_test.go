// Package chart_test holds the Go tests of the Helm chart in this directory
// (rendered and linted with Helm's Go library, dry-run against a real
// kube-apiserver). The chart's .helmignore keeps them, and testdata/, out of
// the packaged chart.
package chart_test

import (
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/telemetry"
	"github.com/mpegflow/mpegflow/operator"
)

const (
	chartDir    = "."
	releaseName = "mf"
	namespace   = "media"
)

// obj is one rendered Kubernetes object, as its YAML decodes.
type obj = map[string]any

// rendered is a chart render: the objects by "Kind/name" and NOTES.txt.
type rendered struct {
	objects map[string]obj
	notes   string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	require.NoError(t, err, "load chart")
	return c
}

// render renders the chart as `helm install` would, with values over the
// chart's defaults, validating them against values.schema.json first.
func render(t *testing.T, values map[string]any) (rendered, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ToRenderValues(c, values,
		chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true},
		chartutil.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return rendered{}, err
	}
	out := rendered{objects: map[string]obj{}}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			out.notes = files[name]
			continue
		}
		for _, doc := range releaseutil.SplitManifests(files[name]) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o obj
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Fatalf("%s: rendered YAML does not parse: %v\n%s", name, err, doc)
			}
			if o == nil {
				continue
			}
			key := str(o, "kind") + "/" + str(o, "metadata", "name")
			if _, dup := out.objects[key]; dup {
				t.Fatalf("%s: %s rendered twice", name, key)
			}
			out.objects[key] = o
		}
	}
	return out, nil
}

func mustRender(t *testing.T, values map[string]any) rendered {
	t.Helper()
	r, err := render(t, values)
	require.NoError(t, err, "render chart")
	return r
}

func fullValues(t *testing.T) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile("testdata/full-values.yaml")
	require.NoError(t, err)
	return v
}

// get walks nested maps and list indexes ("0") of a decoded object.
func get(o any, path ...string) any {
	cur := o
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i := 0
			for _, ch := range p {
				i = i*10 + int(ch-'0')
			}
			if i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func str(o any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

func list(o any, path ...string) []any {
	l, _ := get(o, path...).([]any)
	return l
}

// podSpecs are the pod templates of every workload in r, by object key.
func podSpecs(r rendered) map[string]obj {
	out := map[string]obj{}
	for key, o := range r.objects {
		switch str(o, "kind") {
		case "Deployment", "Job", "StatefulSet", "DaemonSet":
			out[key], _ = get(o, "spec", "template", "spec").(obj)
		}
	}
	return out
}

func containers(spec obj) []obj {
	var out []obj
	for _, field := range []string{"initContainers", "containers"} {
		for _, c := range list(spec, field) {
			out = append(out, c.(obj))
		}
	}
	return out
}

func envOf(c obj) map[string]obj {
	out := map[string]obj{}
	for _, e := range list(c, "env") {
		out[str(e, "name")] = e.(obj)
	}
	return out
}

func kinds(r rendered) []string {
	var ks []string
	for k := range r.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// matrix is the set of value combinations every invariant must hold for.
func matrix(t *testing.T) map[string]map[string]any {
	return map[string]map[string]any{
		"defaults":       nil,
		"full values":    fullValues(t),
		"ingress on":     {"ingress": map[string]any{"enabled": true, "className": "nginx"}},
		"servicemonitor": {"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
		"gpu shared pool": {"defaultPool": map[string]any{
			"accelerator": "nvidia", "max_replicas": 4,
			"node_selector": map[string]any{"nvidia.com/gpu.present": "true"},
			"tolerations":   []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}},
		}},
		"development guard": {"config": map[string]any{"allowHTTP": true, "egressAllow": "10.0.0.0/8,::1"}},
		"existing secrets": {
			"postgres":     map[string]any{"existingSecret": "pg", "operator": map[string]any{"existingSecret": "pg-ro"}},
			"redis":        map[string]any{"existingSecret": "redis"},
			"s3":           map[string]any{"existingSecret": "s3"},
			"serverSecret": map[string]any{"existingSecret": "srv"},
		},
		"no operator, no autoscaling, no policies": {
			"operator":      map[string]any{"enabled": false},
			"apiserver":     map[string]any{"autoscaling": map[string]any{"enabled": false}},
			"networkPolicy": map[string]any{"enabled": false},
			"migrations":    map[string]any{"enabled": false},
		},
	}
}

// secretVars must only ever come from a secretKeyRef, never a literal value.
var secretVars = []string{"DATABASE_URL", "REDIS_URL", "MPEGFLOW_SERVER_SECRET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "MPEGFLOW_OPERATOR_DATABASE_URL"}

func TestChartInvariants(t *testing.T) {
	t.Parallel()
	for name, values := range matrix(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, values)
			require.NotEmpty(t, r.objects)
			require.NotEmpty(t, strings.TrimSpace(r.notes), "NOTES.txt renders")
			for key, o := range r.objects {
				for _, f := range []string{"apiVersion", "kind"} {
					if str(o, f) == "" {
						t.Errorf("%s: no %s", key, f)
					}
				}
				if str(o, "metadata", "name") == "" {
					t.Errorf("%s: no metadata.name", key)
				}
				if ns := str(o, "metadata", "namespace"); ns != "" && ns != namespace {
					t.Errorf("%s: namespace %q, want the release's", key, ns)
				}
				for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of", "helm.sh/chart"} {
					if str(o, "metadata", "labels", l) == "" {
						t.Errorf("%s: no label %s", key, l)
					}
				}
				switch str(o, "kind") {
				case "Secret":
					if get(o, "data") != nil || get(o, "stringData") != nil {
						t.Errorf("%s: the chart renders secret values; reference an existingSecret instead", key)
					}
				case "ClusterRole", "ClusterRoleBinding":
					t.Errorf("%s: the chart needs nothing cluster-wide", key)
				}
			}
			for key, spec := range podSpecs(r) {
				if get(spec, "securityContext", "runAsNonRoot") != true {
					t.Errorf("%s: pod securityContext.runAsNonRoot is not true", key)
				}
				if str(spec, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
					t.Errorf("%s: no RuntimeDefault seccomp profile", key)
				}
				for _, c := range containers(spec) {
					cn := key + "/" + str(c, "name")
					sc := get(c, "securityContext")
					if get(sc, "allowPrivilegeEscalation") != false || get(sc, "readOnlyRootFilesystem") != true ||
						!slices.Equal(list(sc, "capabilities", "drop"), []any{"ALL"}) {
						t.Errorf("%s: container securityContext is not restricted: %v", cn, sc)
					}
					for _, kind := range []string{"requests", "limits"} {
						for _, res := range []string{"cpu", "memory"} {
							if get(c, "resources", kind, res) == nil {
								t.Errorf("%s: no resources.%s.%s", cn, kind, res)
							}
						}
					}
					env := envOf(c)
					if n := len(list(c, "env")); n != len(env) {
						t.Errorf("%s: %d env entries but %d names: a variable is set twice", cn, n, len(env))
					}
					for _, v := range secretVars {
						e, ok := env[v]
						if !ok {
							continue
						}
						if _, literal := e["value"]; literal || str(e, "valueFrom", "secretKeyRef", "name") == "" {
							t.Errorf("%s: %s must come from a secretKeyRef: %v", cn, v, e)
						}
					}
				}
			}
		})
	}
}

func TestDefaultRenderObjects(t *testing.T) {
	t.Parallel()
	r := mustRender(t, nil)
	want := []string{
		"ConfigMap/mf-mpegflow-dashboard",
		"Deployment/mf-mpegflow",
		"Deployment/mf-mpegflow-operator",
		"HorizontalPodAutoscaler/mf-mpegflow",
		"Job/mf-mpegflow-migrate",
		"NetworkPolicy/mf-mpegflow",
		"NetworkPolicy/mf-mpegflow-operator",
		"PodDisruptionBudget/mf-mpegflow",
		"PodDisruptionBudget/mf-mpegflow-operator",
		"Role/mf-mpegflow-operator",
		"RoleBinding/mf-mpegflow-operator",
		"Service/mf-mpegflow",
		"Service/mf-mpegflow-grpc",
		"Service/mf-mpegflow-operator",
		"ServiceAccount/mf-mpegflow",
		"ServiceAccount/mf-mpegflow-operator",
	}
	require.Equal(t, want, kinds(r), "objects of a default install (no Ingress, no ServiceMonitor, no Secret)")
}

func TestAPIServer(t *testing.T) {
	t.Parallel()
	r := mustRender(t, nil)
	d := r.objects["Deployment/mf-mpegflow"]
	require.NotNil(t, d)
	require.Nil(t, get(d, "spec", "replicas"), "the HPA owns replicas")
	spec := get(d, "spec", "template", "spec").(obj)
	cs := containers(spec)
	require.Len(t, cs, 1)
	c := cs[0]
	require.Equal(t, []any{"serve"}, get(c, "args"))

	ports := map[string]float64{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")] = get(p, "containerPort").(float64)
	}
	require.Equal(t, map[string]float64{"http": 8080, "grpc": 50051, "metrics": 9090}, ports)
	require.Equal(t, "/health", str(c, "livenessProbe", "httpGet", "path"))
	require.Equal(t, "http", str(c, "livenessProbe", "httpGet", "port"))
	require.Equal(t, "/ready", str(c, "readinessProbe", "httpGet", "path"))
	require.Equal(t, "http", str(c, "readinessProbe", "httpGet", "port"))
	for _, kind := range []string{"requests", "limits"} {
		require.Equal(t, "1", str(c, "resources", kind, "cpu"), kind)
		require.Equal(t, "1Gi", str(c, "resources", kind, "memory"), kind)
	}
	env := envOf(c)
	for name, want := range map[string]string{"HTTP_ADDR": ":8080", "GRPC_ADDR": ":50051", "METRICS_ADDR": ":9090", "S3_BUCKET": "mpegflow", "REDIS_KEY_PREFIX": "mpegflow",
		"MPEGFLOW_RATE_LIMIT_ENABLED": "true", "MPEGFLOW_RATE_LIMIT_KEY_RATE": "20/s", "MPEGFLOW_RATE_LIMIT_KEY_BURST": "200",
		"MPEGFLOW_RATE_LIMIT_ORG_RATE": "50/s", "MPEGFLOW_RATE_LIMIT_ORG_BURST": "500",
		"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_RATE": "60/m", "MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_BURST": "60",
		"MPEGFLOW_TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", "MPEGFLOW_CONSOLE_UPLOADS": "false"} {
		require.Equal(t, want, str(env[name], "value"), name)
	}
	// The chart's settings are ones the server accepts.
	cfg, err := config.Load(func(name string) string { return str(env[name], "value") })
	require.NoError(t, err)
	require.True(t, cfg.RateLimitEnabled)
	require.Len(t, cfg.Proxies(), 4)

	// The operator's encoder NetworkPolicy admits egress to exactly these pod labels.
	require.Equal(t, "mpegflow", str(d, "spec", "template", "metadata", "labels", "app.kubernetes.io/name"))
	require.Equal(t, "server", str(d, "spec", "template", "metadata", "labels", "app.kubernetes.io/component"))

	var keys []string
	for _, tsc := range list(spec, "topologySpreadConstraints") {
		keys = append(keys, str(tsc, "topologyKey"))
	}
	require.Equal(t, []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, keys)

	hpa := r.objects["HorizontalPodAutoscaler/mf-mpegflow"]
	require.Equal(t, 2.0, get(hpa, "spec", "minReplicas"))
	require.Equal(t, 8.0, get(hpa, "spec", "maxReplicas"))
	require.Equal(t, "cpu", str(hpa, "spec", "metrics", "0", "resource", "name"))
	require.Equal(t, "mf-mpegflow", str(hpa, "spec", "scaleTargetRef", "name"))

	pdb := r.objects["PodDisruptionBudget/mf-mpegflow"]
	require.Equal(t, 1.0, get(pdb, "spec", "minAvailable"))

	grpc := r.objects["Service/mf-mpegflow-grpc"]
	require.Equal(t, 50051.0, get(grpc, "spec", "ports", "0", "port"))
	require.Equal(t, "grpc", str(grpc, "spec", "ports", "0", "targetPort"))
	require.Equal(t, "server", str(grpc, "spec", "selector", "app.kubernetes.io/component"))

	require.NotContains(t, env, "MPEGFLOW_PUBLIC_URL", "no ingress, no public URL: the server's default")
	require.Equal(t, "http://localhost:8080", cfg.PublicURL)

	// The public URL: set, or the first ingress host.
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"set":             {map[string]any{"config": map[string]any{"publicURL": "https://video.example.com/"}}, "https://video.example.com"},
		"ingress":         {map[string]any{"ingress": map[string]any{"enabled": true}}, "http://mpegflow.example.com"},
		"ingress and tls": {map[string]any{"ingress": map[string]any{"enabled": true, "tls": []any{map[string]any{"hosts": []any{"mpegflow.example.com"}, "secretName": "tls"}}}}, "https://mpegflow.example.com"},
	} {
		env := envOf(containers(get(mustRender(t, tc.values).objects["Deployment/mf-mpegflow"], "spec", "template", "spec").(obj))[0])
		require.Equal(t, tc.want, str(env["MPEGFLOW_PUBLIC_URL"], "value"), name)
		cfg, err := config.Load(func(name string) string { return str(env[name], "value") })
		require.NoError(t, err, name)
		require.Equal(t, tc.want, cfg.PublicURL, name)
	}
	// Console uploads: the bucket's CORS rule names the public URL's origin.
	env = envOf(containers(get(mustRender(t, map[string]any{"config": map[string]any{"publicURL": "https://video.example.com/", "consoleUploads": true}}).objects["Deployment/mf-mpegflow"], "spec", "template", "spec").(obj))[0])
	cfg, err = config.Load(func(name string) string { return str(env[name], "value") })
	require.NoError(t, err)
	require.Equal(t, []string{"https://video.example.com"}, cfg.ConsoleUploadOrigins)
	_, err = render(t, map[string]any{"config": map[string]any{"consoleUploads": true}})
	require.ErrorContains(t, err, "config.consoleUploads needs config.publicURL", "no public URL: refused at install, not at the pod's start")

	// Without the HPA the Deployment keeps the two-replica minimum.
	r = mustRender(t, map[string]any{"apiserver": map[string]any{"autoscaling": map[string]any{"enabled": false}}})
	require.Equal(t, 2.0, get(r.objects["Deployment/mf-mpegflow"], "spec", "replicas"))
	require.NotContains(t, r.objects, "HorizontalPodAutoscaler/mf-mpegflow")
}

// TestAPIServerProcessors: the server runs as many Go processors as whole
// CPUs in its limit unless told otherwise, and one GOMAXPROCS only.
func TestAPIServerProcessors(t *testing.T) {
	t.Parallel()
	fromLimit := obj{"resourceFieldRef": obj{"resource": "limits.cpu", "divisor": "1"}}
	for name, tc := range map[string]struct {
		api  map[string]any
		want []obj // the container's GOMAXPROCS entries
	}{
		"default: from the limit": {nil, []obj{{"name": "GOMAXPROCS", "valueFrom": fromLimit}}},
		"left to Go":              {map[string]any{"gomaxprocsFromLimit": false}, nil},
		"extraEnv wins": {map[string]any{"extraEnv": []any{map[string]any{"name": "GOMAXPROCS", "value": "3"}}},
			[]obj{{"name": "GOMAXPROCS", "value": "3"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var values map[string]any
			if tc.api != nil {
				values = map[string]any{"apiserver": tc.api}
			}
			d := mustRender(t, values).objects["Deployment/mf-mpegflow"]
			require.NotNil(t, d)
			cs := containers(get(d, "spec", "template", "spec").(obj))
			require.Len(t, cs, 1)
			var got []obj
			for _, e := range list(cs[0], "env") {
				if str(e, "name") == "GOMAXPROCS" {
					got = append(got, e.(obj))
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestAPIServerServiceAccount: the server's identity for object storage
// when no static keys are set. Its ServiceAccount carries the annotations
// that bind a cloud role (EKS IRSA, GKE Workload Identity), or the chart
// uses an existing one by name.
func TestAPIServerServiceAccount(t *testing.T) {
	t.Parallel()
	saOf := func(r rendered) string {
		return str(r.objects["Deployment/mf-mpegflow"], "spec", "template", "spec", "serviceAccountName")
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		r := mustRender(t, nil)
		sa := r.objects["ServiceAccount/mf-mpegflow"]
		require.NotNil(t, sa)
		require.Nil(t, get(sa, "metadata", "annotations"))
		require.Equal(t, false, get(sa, "automountServiceAccountToken"))
		require.Equal(t, "mf-mpegflow", saOf(r))
	})
	t.Run("pod identity", func(t *testing.T) {
		t.Parallel()
		annotations := map[string]any{
			"eks.amazonaws.com/role-arn":     "arn:aws:iam::123456789012:role/mpegflow",
			"iam.gke.io/gcp-service-account": "mpegflow@project.iam.gserviceaccount.com",
		}
		r := mustRender(t, map[string]any{"apiserver": map[string]any{"serviceAccount": map[string]any{
			"name": "mpegflow-storage", "annotations": annotations,
		}}})
		require.NotContains(t, r.objects, "ServiceAccount/mf-mpegflow")
		sa := r.objects["ServiceAccount/mpegflow-storage"]
		require.NotNil(t, sa)
		require.Equal(t, annotations, get(sa, "metadata", "annotations"))
		require.Equal(t, "mpegflow-storage", saOf(r))

		// Without s3.existingSecret the server gets no static keys, so it
		// uses the AWS default credential chain, and accepts that.
		c := containers(get(r.objects["Deployment/mf-mpegflow"], "spec", "template", "spec").(obj))[0]
		env := envOf(c)
		require.NotContains(t, env, "S3_ACCESS_KEY_ID")
		require.NotContains(t, env, "S3_SECRET_ACCESS_KEY")
		cfg, err := config.Load(func(name string) string { return str(env[name], "value") })
		require.NoError(t, err)
		require.Empty(t, cfg.S3.AccessKeyID)
	})
	t.Run("existing", func(t *testing.T) {
		t.Parallel()
		r := mustRender(t, map[string]any{"apiserver": map[string]any{"serviceAccount": map[string]any{"create": false, "name": "platform-storage"}}})
		for k := range r.objects {
			require.NotEqual(t, "ServiceAccount/mf-mpegflow", k)
			require.NotEqual(t, "ServiceAccount/platform-storage", k, "the chart does not create an existing ServiceAccount")
		}
		require.Contains(t, r.objects, "ServiceAccount/mf-mpegflow-operator")
		require.Equal(t, "platform-storage", saOf(r))
	})
	t.Run("existing without a name", func(t *testing.T) {
		t.Parallel()
		_, err := render(t, map[string]any{"apiserver": map[string]any{"serviceAccount": map[string]any{"create": false}}})
		require.Error(t, err)
		require.Contains(t, err.Error(), "apiserver.serviceAccount.name is required")
	})
}

func TestMigrationsHook(t *testing.T) {
	t.Parallel()
	job := mustRender(t, nil).objects["Job/mf-mpegflow-migrate"]
	require.NotNil(t, job)
	require.Equal(t, "pre-install,pre-upgrade", str(job, "metadata", "annotations", "helm.sh/hook"))
	c := containers(get(job, "spec", "template", "spec").(obj))[0]
	require.Equal(t, []any{"migrate", "up"}, get(c, "args"))
	require.Equal(t, "mpegflow-postgres", str(envOf(c)["DATABASE_URL"], "valueFrom", "secretKeyRef", "name"))
}

func TestOperator(t *testing.T) {
	t.Parallel()
	r := mustRender(t, fullValues(t))
	d := r.objects["Deployment/media-mpegflow-operator"]
	require.NotNil(t, d)
	require.Equal(t, 3.0, get(d, "spec", "replicas"))
	c := containers(get(d, "spec", "template", "spec").(obj))[0]
	require.Equal(t, []any{"operator"}, get(c, "args"))
	env := envOf(c)

	// Every variable the chart sets is one the operator reads, and every
	// variable the operator requires is set.
	known := map[string]bool{}
	for _, v := range operator.EnvVars {
		known[v.Name] = true
	}
	for name := range env {
		require.True(t, known[name], "operator env %s is not in operator.EnvVars", name)
	}
	for _, name := range []string{"MPEGFLOW_OPERATOR_DATABASE_URL", "MPEGFLOW_OPERATOR_NAMESPACE", "MPEGFLOW_ENCODER_IMAGE",
		"MPEGFLOW_OPERATOR_COORDINATOR", "MPEGFLOW_OPERATOR_REDIS_ADDRESS", "MPEGFLOW_SERVER_SECRET", "POD_NAME"} {
		require.Contains(t, env, name)
	}
	require.Equal(t, "media-mpegflow-grpc.media.svc:50051", str(env["MPEGFLOW_OPERATOR_COORDINATOR"], "value"))
	require.Equal(t, "registry.example.com/mpegflow-encoder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		str(env["MPEGFLOW_ENCODER_IMAGE"], "value"))
	require.Equal(t, "metadata.namespace", str(env["MPEGFLOW_OPERATOR_NAMESPACE"], "valueFrom", "fieldRef", "fieldPath"))
	require.Equal(t, "10.20.0.0/16,52.218.0.0/17", str(env["MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS"], "value"))
	require.Equal(t, "cost-center=video", str(env["MPEGFLOW_OPERATOR_LABELS"], "value"))

	// The default pool's values reach the operator as settings it accepts.
	getenv := func(name string) string {
		if v := str(env[name], "value"); v != "" {
			return v
		}
		// What the kubelet fills in from secretKeyRef and fieldRef.
		return map[string]string{
			"MPEGFLOW_OPERATOR_DATABASE_URL": "postgres://op@db/mpegflow",
			"MPEGFLOW_SERVER_SECRET":         strings.Repeat("s", 32),
			"MPEGFLOW_OPERATOR_NAMESPACE":    namespace,
			"POD_NAME":                       "operator-0",
		}[name]
	}
	cfg, _, err := operator.FromEnv(getenv)
	require.NoError(t, err, "the operator accepts the chart's environment")
	require.NotNil(t, cfg.DefaultPool)
	require.Equal(t, "nvidia", cfg.DefaultPool.Accelerator)
	require.Equal(t, 20, cfg.DefaultPool.MaxReplicas)
	require.Len(t, cfg.DefaultPool.CronWindows, 1)
	require.NoError(t, cfg.DefaultPool.Validate(), "the default pool's settings are valid")

	role := r.objects["Role/media-mpegflow-operator"]
	got := map[string][]string{}
	for _, rule := range list(role, "rules") {
		for _, g := range list(rule, "apiGroups") {
			for _, res := range list(rule, "resources") {
				var verbs []string
				for _, v := range list(rule, "verbs") {
					verbs = append(verbs, v.(string))
				}
				got[g.(string)+"/"+res.(string)] = verbs
			}
		}
	}
	rw := []string{"get", "list", "watch", "create", "patch", "update", "delete"}
	require.Equal(t, map[string][]string{
		"keda.sh/scaledjobs":                rw,
		"keda.sh/triggerauthentications":    rw,
		"networking.k8s.io/networkpolicies": rw,
		"/secrets":                          rw,
		"coordination.k8s.io/leases":        {"get", "create", "update"},
	}, got)
	rb := r.objects["RoleBinding/media-mpegflow-operator"]
	require.Equal(t, "media-mpegflow-operator", str(rb, "subjects", "0", "name"))
	require.Equal(t, "media-mpegflow-operator", str(d, "spec", "template", "spec", "serviceAccountName"))
}

// TestOperatorObservability: the operator's probes, metrics port and
// Service, and the settings behind them, reach the operator as values it
// accepts; the NetworkPolicy admits scrapes of the metrics port.
func TestOperatorObservability(t *testing.T) {
	t.Parallel()
	r := mustRender(t, nil)
	d := r.objects["Deployment/mf-mpegflow-operator"]
	require.NotNil(t, d)
	c := containers(get(d, "spec", "template", "spec").(obj))[0]
	ports := map[string]float64{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")] = get(p, "containerPort").(float64)
	}
	require.Equal(t, map[string]float64{"health": 8081, "metrics": 9090}, ports)
	for probe, path := range map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		require.Equal(t, path, str(c, probe, "httpGet", "path"), probe)
		require.Equal(t, "health", str(c, probe, "httpGet", "port"), probe)
	}
	env := envOf(c)
	for name, want := range map[string]string{"MPEGFLOW_OPERATOR_HEALTH_ADDR": ":8081", "MPEGFLOW_OPERATOR_METRICS_ADDR": ":9090",
		"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS": "3", "MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN": "false", "MPEGFLOW_LOG_LEVEL": "info"} {
		require.Equal(t, want, str(env[name], "value"), name)
	}
	require.Equal(t, obj{"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"},
		get(d, "spec", "template", "metadata", "annotations"))

	svc := r.objects["Service/mf-mpegflow-operator"]
	require.Equal(t, "metrics", str(svc, "spec", "ports", "0", "targetPort"))
	require.Equal(t, 9090.0, get(svc, "spec", "ports", "0", "port"))
	require.Equal(t, "operator", str(svc, "spec", "selector", "app.kubernetes.io/component"))
	np := r.objects["NetworkPolicy/mf-mpegflow-operator"]
	require.Equal(t, 9090.0, get(np, "spec", "ingress", "0", "ports", "0", "port"))
	require.Len(t, list(np, "spec", "ingress"), 1, "only the metrics port is admitted")

	// Other values reach the operator, and it accepts them.
	r = mustRender(t, map[string]any{
		"config":   map[string]any{"logLevel": "debug"},
		"operator": map[string]any{"ports": map[string]any{"health": 8181, "metrics": 9191}, "unreadyAfterPeriods": 5, "allowWriteLogin": true, "prometheusAnnotations": map[string]any{"enabled": false}},
	})
	d = r.objects["Deployment/mf-mpegflow-operator"]
	c = containers(get(d, "spec", "template", "spec").(obj))[0]
	env = envOf(c)
	_, run, err := operator.FromEnv(func(name string) string {
		if v := str(env[name], "value"); v != "" {
			return v
		}
		return map[string]string{"MPEGFLOW_OPERATOR_DATABASE_URL": "postgres://op@db/mpegflow", "MPEGFLOW_SERVER_SECRET": strings.Repeat("s", 32),
			"MPEGFLOW_OPERATOR_NAMESPACE": namespace, "POD_NAME": "operator-0"}[name]
	})
	require.NoError(t, err)
	require.Equal(t, slog.LevelDebug, run.LogLevel)
	require.Equal(t, ":8181", run.HealthAddr)
	require.Equal(t, ":9191", run.MetricsAddr)
	require.Equal(t, 5, run.UnreadyAfterPeriods)
	require.True(t, run.AllowWriteLogin)
	require.Nil(t, get(d, "spec", "template", "metadata", "annotations"))
	require.Equal(t, 9191.0, get(r.objects["NetworkPolicy/mf-mpegflow-operator"], "spec", "ingress", "0", "ports", "0", "port"))
}

// TestDashboard checks the Grafana dashboard has one panel (rows aside) for
// each metric the reference document fixes, each of the control plane's
// and each of the operator's, as the telemetry package registers them.
func TestDashboard(t *testing.T) {
	t.Parallel()
	designMetrics := slices.Concat(telemetry.ReferenceNames, telemetry.ControlPlaneNames, telemetry.OperatorNames)
	cm := mustRender(t, nil).objects["ConfigMap/mf-mpegflow-dashboard"]
	require.NotNil(t, cm)
	require.Equal(t, "1", str(cm, "metadata", "labels", "grafana_dashboard"), "the Grafana sidecar's label")
	var dash obj
	require.NoError(t, yaml.Unmarshal([]byte(str(cm, "data", "mpegflow.json")), &dash), "dashboard JSON parses")
	var panels []any
	for _, p := range list(dash, "panels") {
		if str(p, "type") != "row" {
			panels = append(panels, p)
		}
	}
	require.Len(t, panels, len(designMetrics))
	var exprs []string
	for _, p := range panels {
		for _, tgt := range list(p, "targets") {
			exprs = append(exprs, str(tgt, "expr"))
		}
	}
	for expr, names := range parsePromQL(t, exprs) {
		for _, m := range names {
			require.True(t, exported(designMetrics, m), "%s reads %s, which MpegFlow does not export", expr, m)
		}
	}
	for _, m := range designMetrics {
		n := 0
		for _, p := range panels {
			for _, tgt := range list(p, "targets") {
				if regexp.MustCompile(`\b` + m + `(_bucket|_sum|_count)?\b`).MatchString(str(tgt, "expr")) {
					n++
					break
				}
			}
		}
		require.Equal(t, 1, n, "panels querying %s", m)
	}
}

// TestAlertRules: the PrometheusRule is rendered only when asked for; each
// rule names an alert, a severity, a summary and how long it must hold;
// every metric an expression reads is one the telemetry package
// registers, selected by the release's namespace; the thresholds are the
// values'; and the operator's alert goes with the operator.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	for _, k := range kinds(mustRender(t, nil)) {
		require.False(t, strings.HasPrefix(k, "PrometheusRule/"), "off by default: %s", k)
	}
	known := slices.Concat(telemetry.ReferenceNames, telemetry.ControlPlaneNames, telemetry.OperatorNames)
	alerts := func(values map[string]any) map[string]any {
		t.Helper()
		pr := mustRender(t, values).objects["PrometheusRule/media-mpegflow"]
		require.NotNil(t, pr)
		require.Equal(t, "kube-prometheus-stack", str(pr, "metadata", "labels", "release"))
		out := map[string]any{}
		var exprs []string
		for _, rule := range list(pr, "spec", "groups", "0", "rules") {
			name := str(rule, "alert")
			require.NotEmpty(t, name)
			require.NotEmpty(t, str(rule, "for"), name)
			require.Contains(t, []string{"warning", "critical"}, str(rule, "labels", "severity"), name)
			require.NotEmpty(t, str(rule, "annotations", "summary"), name)
			expr := str(rule, "expr")
			require.Contains(t, expr, `namespace="`+namespace+`"`, "%s: this release's series only", name)
			exprs = append(exprs, expr)
			out[name] = rule
		}
		for expr, names := range parsePromQL(t, exprs) {
			require.NotEmpty(t, names, expr)
			for _, m := range names {
				require.True(t, exported(known, m), "%s reads %s, which MpegFlow does not export", expr, m)
			}
		}
		return out
	}

	got := alerts(fullValues(t))
	require.ElementsMatch(t, []string{"MpegFlowLiveDispatchSlow", "MpegFlowJobsNotClaimed", "MpegFlowEventBusSlow", "MpegFlowOperatorNotReconciling"},
		slices.Collect(maps.Keys(got)))
	live := str(got["MpegFlowLiveDispatchSlow"], "expr")
	require.Contains(t, live, `lane="live", kind="job"`, "customers' live jobs, not a split job's tasks")
	require.True(t, strings.HasSuffix(live, "> 90"), "the values' bound (full-values: 90 s): %s", live)
	require.True(t, strings.HasSuffix(str(got["MpegFlowEventBusSlow"], "expr"), "> 1"), "the default bound")
	stuck := str(got["MpegFlowJobsNotClaimed"], "expr")
	require.Contains(t, stuck, "unless on (pool_id)", "paused pools' queues wait on purpose")
	require.Contains(t, stuck, "mpegflow_pool_paused")
	operator := str(got["MpegFlowOperatorNotReconciling"], "expr")
	require.Contains(t, operator, `[600s]`, "the default window")
	require.Contains(t, operator, "absent(", "no operator scraped at all")

	full := fullValues(t)
	full["operator"] = map[string]any{"enabled": false}
	require.NotContains(t, alerts(full), "MpegFlowOperatorNotReconciling", "no operator, no alert about it")

	// The default bound is a bucket bound of the histogram, where
	// histogram_quantile's estimate is exact, not interpolated.
	full = fullValues(t)
	full["metrics"].(map[string]any)["prometheusRule"] = map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}}
	live = str(alerts(full)["MpegFlowLiveDispatchSlow"], "expr")
	bound, err := strconv.ParseFloat(live[strings.LastIndex(live, "> ")+2:], 64)
	require.NoError(t, err, live)
	require.Contains(t, telemetry.DispatchBuckets, bound, "the default bound %v", bound)
}

func TestOptionalObjects(t *testing.T) {
	t.Parallel()
	r := mustRender(t, fullValues(t))
	ing := r.objects["Ingress/media-mpegflow"]
	require.NotNil(t, ing)
	require.Equal(t, "nginx", str(ing, "spec", "ingressClassName"))
	require.Equal(t, "http", str(ing, "spec", "rules", "0", "http", "paths", "0", "backend", "service", "port", "name"))
	require.Equal(t, "3600", str(ing, "metadata", "annotations", "nginx.ingress.kubernetes.io/proxy-read-timeout"), "WebSocket timeouts")

	sm := r.objects["ServiceMonitor/media-mpegflow"]
	require.NotNil(t, sm)
	require.Equal(t, "metrics", str(sm, "spec", "endpoints", "0", "port"))
	require.Equal(t, "kube-prometheus-stack", str(sm, "metadata", "labels", "release"))
	sm = r.objects["ServiceMonitor/media-mpegflow-operator"]
	require.NotNil(t, sm, "the operator's metrics are scraped too")
	require.Equal(t, "metrics", str(sm, "spec", "endpoints", "0", "port"))
	require.Equal(t, "operator", str(sm, "spec", "selector", "matchLabels", "app.kubernetes.io/component"))
	require.Equal(t, "kube-prometheus-stack", str(sm, "metadata", "labels", "release"))

	require.Equal(t, "None", str(r.objects["Service/media-mpegflow-grpc"], "spec", "clusterIP"))
	d := r.objects["Deployment/media-mpegflow"]
	c := containers(get(d, "spec", "template", "spec").(obj))[0]
	require.Equal(t, "registry.example.com/mpegflow:1.2.3", str(c, "image"))
	require.Equal(t, "s3-creds", str(envOf(c)["S3_SECRET_ACCESS_KEY"], "valueFrom", "secretKeyRef", "name"))
}

func TestSchemaRejectsInvalidValues(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"typo at the top":          {map[string]any{"ingres": map[string]any{"enabled": true}}, "ingres"},
		"typo in a section":        {map[string]any{"apiserver": map[string]any{"replica": 3}}, "replica"},
		"typo in default pool":     {map[string]any{"defaultPool": map[string]any{"maxReplicas": 3}}, "maxReplicas"},
		"bad accelerator":          {map[string]any{"defaultPool": map[string]any{"accelerator": "gpu"}}, "accelerator"},
		"one replica":              {map[string]any{"apiserver": map[string]any{"autoscaling": map[string]any{"minReplicas": 1}}}, "minReplicas"},
		"bad duration":             {map[string]any{"config": map[string]any{"lease": "a minute"}}, "lease"},
		"secret value inline":      {map[string]any{"serverSecret": map[string]any{"value": "hunter2"}}, "value"},
		"rate per day":             {map[string]any{"config": map[string]any{"rateLimit": map[string]any{"keyRate": "20/d"}}}, "keyRate"},
		"zero burst":               {map[string]any{"config": map[string]any{"rateLimit": map[string]any{"orgBurst": 0}}}, "orgBurst"},
		"typo in service account":  {map[string]any{"apiserver": map[string]any{"serviceAccount": map[string]any{"annotation": map[string]any{}}}}, "annotation"},
		"bad service account name": {map[string]any{"apiserver": map[string]any{"serviceAccount": map[string]any{"name": "Media_SA"}}}, "name"},
		"typo in operator SA":      {map[string]any{"operator": map[string]any{"serviceAccount": map[string]any{"annotation": map[string]any{}}}}, "annotation"},
		"typo in a toleration":     {map[string]any{"operator": map[string]any{"tolerations": []any{map[string]any{"effects": "NoSchedule"}}}}, "effects"},
		"typo in affinity":         {map[string]any{"migrations": map[string]any{"affinity": map[string]any{"nodeAfinity": map[string]any{}}}}, "nodeAfinity"},
		"env without name":         {map[string]any{"apiserver": map[string]any{"extraEnv": []any{map[string]any{"value": "x"}}}}, "name"},
		"bad priority class":       {map[string]any{"apiserver": map[string]any{"priorityClassName": "High_Priority"}}, "priorityClassName"},
		"pod label not a string":   {map[string]any{"operator": map[string]any{"podLabels": map[string]any{"tier": 1}}}, "tier"},
		"operator port too high":   {map[string]any{"operator": map[string]any{"ports": map[string]any{"health": 8081, "metrics": 90900}}}, "metrics"},
		"unready after 0 periods":  {map[string]any{"operator": map[string]any{"unreadyAfterPeriods": 0}}, "unreadyAfterPeriods"},
		"public url relative":      {map[string]any{"config": map[string]any{"publicURL": "video.example.com"}}, "publicURL"},
		"public url with query":    {map[string]any{"config": map[string]any{"publicURL": "https://video.example.com/?a=1"}}, "publicURL"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, tc.values)
			require.Error(t, err)
			require.Contains(t, err.Error(), "values don't meet the specifications of the schema")
			require.Contains(t, err.Error(), tc.want, "the message names the offending key")
		})
	}
}

// TestHelmLint runs `helm lint`'s checks (Chart.yaml, values, templates)
// with the defaults and the full values file: no warning or error (INFO,
// such as "icon is recommended", is allowed).
func TestHelmLint(t *testing.T) {
	t.Parallel()
	for name, values := range map[string]map[string]any{"defaults": nil, "full values": fullValues(t)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := lint.All(chartDir, values, namespace, false)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

// TestWorkloadEscapeHatches: every workload the chart renders takes the
// platform team's labels, annotations, priority, scheduling and
// environment, and ServiceAccounts take annotations; the chart's own
// labels win over podLabels, so a selector cannot be broken.
func TestWorkloadEscapeHatches(t *testing.T) {
	t.Parallel()
	hatches := func(who string) map[string]any {
		return map[string]any{
			"podLabels":         map[string]any{"team": who, "app.kubernetes.io/name": "hijack"},
			"podAnnotations":    map[string]any{"example.com/owner": who},
			"priorityClassName": who + "-critical",
			"nodeSelector":      map[string]any{"pool": who},
			"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": who, "effect": "NoSchedule"}},
			"affinity": map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
				"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{who}}}}},
			}}},
			"extraEnv": []any{
				map[string]any{"name": "HATCH_" + strings.ToUpper(who), "value": who},
				map[string]any{"name": "HATCH_FROM", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": who, "key": "k"}}},
			},
		}
	}
	api, op, mig := hatches("api"), hatches("operator"), hatches("migrate")
	api["serviceAccount"] = map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:api"}}
	op["serviceAccount"] = map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:operator"}}
	values := map[string]any{"apiserver": api, "operator": op, "migrations": mig}
	r := mustRender(t, values)

	for key, who := range map[string]string{"Deployment/mf-mpegflow": "api", "Deployment/mf-mpegflow-operator": "operator", "Job/mf-mpegflow-migrate": "migrate"} {
		o := r.objects[key]
		require.NotNil(t, o, key)
		meta := get(o, "spec", "template", "metadata")
		require.Equal(t, who, str(meta, "labels", "team"), key)
		require.Equal(t, "mpegflow", str(meta, "labels", "app.kubernetes.io/name"), "%s: the chart's label wins over podLabels", key)
		require.Equal(t, who, str(meta, "annotations", "example.com/owner"), key)
		spec := get(o, "spec", "template", "spec").(obj)
		require.Equal(t, who+"-critical", str(spec, "priorityClassName"), key)
		require.Equal(t, who, str(spec, "nodeSelector", "pool"), key)
		require.Equal(t, who, str(spec, "tolerations", "0", "value"), key)
		require.Equal(t, who, str(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
			"nodeSelectorTerms", "0", "matchExpressions", "0", "values", "0"), key)
		env := envOf(containers(spec)[0])
		require.Equal(t, who, str(env["HATCH_"+strings.ToUpper(who)], "value"), key)
		require.Equal(t, who, str(env["HATCH_FROM"], "valueFrom", "secretKeyRef", "name"), key)
	}
	require.Equal(t, "arn:api", str(r.objects["ServiceAccount/mf-mpegflow"], "metadata", "annotations", "eks.amazonaws.com/role-arn"))
	require.Equal(t, "arn:operator", str(r.objects["ServiceAccount/mf-mpegflow-operator"], "metadata", "annotations", "eks.amazonaws.com/role-arn"))

	// The values that set every hatch pass helm lint.
	l := lint.All(chartDir, values, namespace, false)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}

	// Unset, no hatch renders.
	r = mustRender(t, nil)
	for _, key := range []string{"Deployment/mf-mpegflow", "Deployment/mf-mpegflow-operator", "Job/mf-mpegflow-migrate"} {
		spec := get(r.objects[key], "spec", "template", "spec").(obj)
		for _, field := range []string{"priorityClassName", "nodeSelector", "tolerations", "affinity"} {
			require.NotContains(t, spec, field, key)
		}
	}
}

// TestAPIServerPrometheusAnnotations: annotation-based Prometheus discovery
// finds the server's metrics port by default; it can be switched off, and
// podAnnotations override single keys.
func TestAPIServerPrometheusAnnotations(t *testing.T) {
	t.Parallel()
	ann := func(values map[string]any) any {
		return get(mustRender(t, values).objects["Deployment/mf-mpegflow"], "spec", "template", "metadata", "annotations")
	}
	require.Equal(t, obj{"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"}, ann(nil))
	require.Equal(t, obj{"prometheus.io/scrape": "true", "prometheus.io/port": "9191", "prometheus.io/path": "/metrics", "prometheus.io/scheme": "http"},
		ann(map[string]any{"apiserver": map[string]any{"ports": map[string]any{"metrics": 9191}, "podAnnotations": map[string]any{"prometheus.io/scheme": "http"}}}))
	require.Equal(t, obj{"prometheus.io/scrape": "false", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"},
		ann(map[string]any{"apiserver": map[string]any{"podAnnotations": map[string]any{"prometheus.io/scrape": "false"}}}))
	require.Nil(t, ann(map[string]any{"apiserver": map[string]any{"prometheusAnnotations": map[string]any{"enabled": false}}}))
}

// exported tells whether series name is one of metrics, or a histogram's
// _bucket, _sum or _count series of one.
func exported(metrics []string, name string) bool {
	if slices.Contains(metrics, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(metrics, base) {
			return true
		}
	}
	return false
}
