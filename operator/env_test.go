package operator

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// baseEnv is a complete, valid operator environment.
func baseEnv() map[string]string {
	return map[string]string{
		"MPEGFLOW_OPERATOR_DATABASE_URL":                      "postgres://op@db/mpegflow",
		"MPEGFLOW_OPERATOR_NAMESPACE":                         "media",
		"MPEGFLOW_ENCODER_IMAGE":                              "registry.example.com/encoder:1",
		"MPEGFLOW_OPERATOR_COORDINATOR":                       "mpegflow-grpc.media.svc:50051",
		"MPEGFLOW_OPERATOR_COORDINATOR_NAMESPACE":             "media",
		"MPEGFLOW_OPERATOR_REDIS_ADDRESS":                     "redis:6379",
		"MPEGFLOW_OPERATOR_REDIS_DATABASE":                    "0",
		"MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET":                 "keda-redis",
		"MPEGFLOW_OPERATOR_REDIS_PASSWORD_ONLY":               "false",
		"MPEGFLOW_OPERATOR_REDIS_TLS":                         "true",
		"MPEGFLOW_OPERATOR_REDIS_TLS_SECRET":                  "redis-tls",
		"MPEGFLOW_OPERATOR_REDIS_TLS_CLIENT_CERT":             "false",
		"MPEGFLOW_OPERATOR_REDIS_TLS_INSECURE_SKIP_VERIFY":    "false",
		"REDIS_KEY_PREFIX":                                    "mpegflow",
		"MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS":              "10.0.0.0/16",
		"MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS":              "443",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_NAMESPACE":           "",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_POD_LABELS":          "app=minio",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_PORTS":               "",
		"MPEGFLOW_OPERATOR_PUBLIC_EGRESS":                     "true",
		"MPEGFLOW_OPERATOR_PUBLIC_EGRESS_EXCEPT":              "",
		"MPEGFLOW_OPERATOR_DNS_NAMESPACE":                     "kube-system",
		"MPEGFLOW_OPERATOR_DNS_POD_LABELS":                    "k8s-app=kube-dns",
		"MPEGFLOW_OPERATOR_DNS_CIDRS":                         "",
		"MPEGFLOW_OPERATOR_LABELS":                            "team=video",
		"MPEGFLOW_OPERATOR_DEFAULT_POOL":                      `{"name": "Shared", "max_replicas": 4}`,
		"MPEGFLOW_OPERATOR_ENCODER_CPU_REQUEST":               "1",
		"MPEGFLOW_OPERATOR_ENCODER_MEMORY_REQUEST":            "2Gi",
		"MPEGFLOW_OPERATOR_ENCODER_EPHEMERAL_STORAGE_REQUEST": "",
		"MPEGFLOW_OPERATOR_PERIOD":                            "30s",
		"MPEGFLOW_OPERATOR_LEASE_DURATION":                    "30s",
		"MPEGFLOW_SERVER_SECRET":                              strings.Repeat("s", 32),
		"MPEGFLOW_ALLOW_HTTP":                                 "false",
		"MPEGFLOW_EGRESS_ALLOW":                               "",
		"POD_NAME":                                            "operator-0",
		"MPEGFLOW_LOG_LEVEL":                                  "info",
		"MPEGFLOW_OPERATOR_HEALTH_ADDR":                       ":8081",
		"MPEGFLOW_OPERATOR_METRICS_ADDR":                      ":9090",
		"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS":             "3",
		"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN":                 "false",
	}
}

// TestEnvVarsListsWhatFromEnvReads fails when FromEnv reads a variable
// EnvVars does not list (a fallback named as an entry's Default aside), or
// when EnvVars lists one FromEnv never reads: the chart's test derives the
// server's plan settings from the list.
func TestEnvVarsListsWhatFromEnvReads(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	read := map[string]bool{}
	_, _, err := FromEnv(func(name string) string {
		read[name] = true
		return env[name]
	})
	require.NoError(t, err)

	listed, fallbacks := map[string]bool{}, map[string]bool{}
	for _, v := range EnvVars {
		require.False(t, listed[v.Name], "%s is listed twice", v.Name)
		listed[v.Name] = true
		fallbacks[v.Default] = true
	}
	for _, name := range slices.Sorted(maps.Keys(read)) {
		if !listed[name] && !fallbacks[name] {
			t.Errorf("FromEnv reads %s, which EnvVars does not list", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(listed)) {
		if !read[name] {
			t.Errorf("EnvVars lists %s, which FromEnv does not read", name)
		}
		if _, ok := env[name]; !ok {
			t.Errorf("baseEnv has no %s: add it (and an alternative in TestEnvVarsRenderSaysWhatAVariableFeeds)", name)
		}
	}
}

// TestEnvVarsRenderSaysWhatAVariableFeeds changes one variable at a time
// and checks EnvVar.Render against what changed: a Render variable changes
// Config (what the operator renders); any other changes RunConfig only.
func TestEnvVarsRenderSaysWhatAVariableFeeds(t *testing.T) {
	t.Parallel()
	other := map[string]string{
		"MPEGFLOW_OPERATOR_DATABASE_URL":                      "postgres://op@other/mpegflow",
		"MPEGFLOW_OPERATOR_NAMESPACE":                         "other",
		"MPEGFLOW_ENCODER_IMAGE":                              "registry.example.com/encoder:2",
		"MPEGFLOW_OPERATOR_COORDINATOR":                       "other.media.svc:50051",
		"MPEGFLOW_OPERATOR_COORDINATOR_NAMESPACE":             "other",
		"MPEGFLOW_OPERATOR_REDIS_ADDRESS":                     "redis-2:6379",
		"MPEGFLOW_OPERATOR_REDIS_DATABASE":                    "3",
		"MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET":                 "other-redis",
		"MPEGFLOW_OPERATOR_REDIS_PASSWORD_ONLY":               "true",
		"MPEGFLOW_OPERATOR_REDIS_TLS":                         "false",
		"MPEGFLOW_OPERATOR_REDIS_TLS_SECRET":                  "other-tls",
		"MPEGFLOW_OPERATOR_REDIS_TLS_CLIENT_CERT":             "true",
		"MPEGFLOW_OPERATOR_REDIS_TLS_INSECURE_SKIP_VERIFY":    "true",
		"REDIS_KEY_PREFIX":                                    "mf",
		"MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS":              "10.1.0.0/16",
		"MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS":              "9000",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_NAMESPACE":           "minio",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_POD_LABELS":          "app=other",
		"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_PORTS":               "9001",
		"MPEGFLOW_OPERATOR_PUBLIC_EGRESS":                     "false",
		"MPEGFLOW_OPERATOR_PUBLIC_EGRESS_EXCEPT":              "10.0.0.0/8,fc00::/7",
		"MPEGFLOW_OPERATOR_DNS_NAMESPACE":                     "dns",
		"MPEGFLOW_OPERATOR_DNS_POD_LABELS":                    "k8s-app=coredns",
		"MPEGFLOW_OPERATOR_DNS_CIDRS":                         "169.254.20.10/32",
		"MPEGFLOW_OPERATOR_LABELS":                            "team=audio",
		"MPEGFLOW_OPERATOR_DEFAULT_POOL":                      `{"name": "Shared", "max_replicas": 8}`,
		"MPEGFLOW_OPERATOR_ENCODER_CPU_REQUEST":               "500m",
		"MPEGFLOW_OPERATOR_ENCODER_MEMORY_REQUEST":            "1Gi",
		"MPEGFLOW_OPERATOR_ENCODER_EPHEMERAL_STORAGE_REQUEST": "20Gi",
		"MPEGFLOW_OPERATOR_PERIOD":                            "10s",
		"MPEGFLOW_OPERATOR_LEASE_DURATION":                    "15s",
		"MPEGFLOW_SERVER_SECRET":                              strings.Repeat("t", 32),
		"MPEGFLOW_ALLOW_HTTP":                                 "true",
		"MPEGFLOW_EGRESS_ALLOW":                               "127.0.0.0/8",
		"POD_NAME":                                            "operator-1",
		"MPEGFLOW_LOG_LEVEL":                                  "debug",
		"MPEGFLOW_OPERATOR_HEALTH_ADDR":                       "127.0.0.1:18081",
		"MPEGFLOW_OPERATOR_METRICS_ADDR":                      "127.0.0.1:19090",
		"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS":             "5",
		"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN":                 "true",
	}
	load := func(env map[string]string) (Config, RunConfig) {
		cfg, run, err := FromEnv(func(name string) string { return env[name] })
		require.NoError(t, err)
		return cfg, run
	}
	baseCfg, baseRun := load(baseEnv())
	for _, v := range EnvVars {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			alt, ok := other[v.Name]
			require.True(t, ok, "the test has no other value for %s: add one", v.Name)
			env := baseEnv()
			env[v.Name] = alt
			cfg, run := load(env)
			cfgChanged := cmp.Diff(baseCfg, cfg) != ""
			if v.Render {
				require.True(t, cfgChanged, "%s is marked Render but does not change Config", v.Name)
				return
			}
			require.False(t, cfgChanged, "%s changes Config: mark it Render, or a server's plans would differ from the operator's", v.Name)
			require.NotEmpty(t, cmp.Diff(baseRun, run), "%s changes neither Config nor RunConfig", v.Name)
		})
	}
}

// TestFromEnvObservability: the log level, probe and metrics addresses,
// readiness threshold and write-login override are read, defaulted and
// validated, each error naming its variable.
func TestFromEnvObservability(t *testing.T) {
	t.Parallel()
	load := func(set map[string]string) (RunConfig, error) {
		env := baseEnv()
		for _, name := range []string{"MPEGFLOW_LOG_LEVEL", "MPEGFLOW_OPERATOR_HEALTH_ADDR", "MPEGFLOW_OPERATOR_METRICS_ADDR",
			"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS", "MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN"} {
			delete(env, name)
		}
		maps.Copy(env, set)
		_, run, err := FromEnv(func(name string) string { return env[name] })
		return run, err
	}
	run, err := load(nil)
	require.NoError(t, err)
	require.Equal(t, slog.LevelInfo, run.LogLevel)
	require.Equal(t, ":8081", run.HealthAddr)
	require.Equal(t, ":9090", run.MetricsAddr)
	require.Equal(t, 3, run.UnreadyAfterPeriods)
	require.False(t, run.AllowWriteLogin, "a write-capable login is refused by default")

	run, err = load(map[string]string{"MPEGFLOW_LOG_LEVEL": "warn", "MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS": "1", "MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN": "true"})
	require.NoError(t, err)
	require.Equal(t, slog.LevelWarn, run.LogLevel)
	require.Equal(t, 1, run.UnreadyAfterPeriods)
	require.True(t, run.AllowWriteLogin)

	for name, value := range map[string]string{
		"MPEGFLOW_LOG_LEVEL":                      "loud",
		"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS": "0",
		"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN":     "maybe",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := load(map[string]string{name: value})
			require.ErrorContains(t, err, name)
		})
	}
}

// TestDefaultPoolReadsTheAPIsFieldNames holds MPEGFLOW_OPERATOR_DEFAULT_POOL
// to the fields of the API (the chart's defaultPool is written with them)
// and refuses a field it does not know rather than dropping it.
func TestDefaultPoolReadsTheAPIsFieldNames(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		json    string
		wantErr string
		check   func(t *testing.T, cfg Config)
	}{
		"snake_case fields": {
			json: `{"name": "Shared GPU", "accelerator": "nvidia", "max_replicas": 20, "backfill_max_replicas": 4,
				"cron_windows": [{"timezone": "UTC", "start": "0 8 * * *", "end": "0 20 * * *", "desired_replicas": 3}],
				"resources": {"cpu_request": "4"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}`,
			check: func(t *testing.T, cfg Config) {
				p := cfg.DefaultPool
				require.NotNil(t, p)
				require.Equal(t, "nvidia", p.Accelerator)
				require.Equal(t, 20, p.MaxReplicas)
				require.Equal(t, 4, p.BackfillMaxReplicas)
				require.Len(t, p.CronWindows, 1)
				require.Equal(t, 3, p.CronWindows[0].DesiredReplicas)
				require.Equal(t, "4", p.Resources.CPURequest)
				require.Equal(t, "nvidia.com/gpu", p.Tolerations[0].Key)
				require.Equal(t, 1, p.TargetQueueLength, "a field left out keeps its default")
				require.Equal(t, 1, p.JobsPerPod)
			},
		},
		"unknown field": {json: `{"name": "Shared", "max_replica": 20}`, wantErr: `unknown field "max_replica"`},
		"not JSON":      {json: `max_replicas: 20`, wantErr: "MPEGFLOW_OPERATOR_DEFAULT_POOL"},
		"pause windows belong to the row": {
			json:    `{"name": "Shared", "pause_windows": [{"start": "0 1 * * *", "end": "0 5 * * *", "timezone": "UTC"}]}`,
			wantErr: "PATCH /v1/pools/default",
		},
		"more than one job per pod": {json: `{"name": "Shared", "jobs_per_pod": 4}`, wantErr: "jobs_per_pod must be 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := baseEnv()
			env["MPEGFLOW_OPERATOR_DEFAULT_POOL"] = tc.json
			cfg, _, err := FromEnv(func(name string) string { return env[name] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg)
		})
	}
}
