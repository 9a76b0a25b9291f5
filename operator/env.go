package operator

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/store"
)

// EnvVar is one variable FromEnv reads.
type EnvVar struct {
	Name, Default, Meaning string
	// Render is true when the variable feeds Config, what the operator
	// renders, and false when it only feeds RunConfig (how the process
	// runs). A server that shows plans (GET /v1/pools/{id}/plan) needs
	// every Render variable with the operator's own values, or its plans
	// differ from what the operator applies; the chart's test holds it to
	// that.
	Render bool
}

// EnvVars documents the variables FromEnv reads (`mpegflow operator`,
// `mpegflow pools plan` and a server showing plans); the package's tests
// fail when FromEnv reads a variable that is not listed (fallbacks named
// in Default aside) or when Render does not say what a variable feeds.
var EnvVars = []EnvVar{
	{"MPEGFLOW_OPERATOR_DATABASE_URL", "DATABASE_URL", "Postgres URL of a login in role mpegflow_operator (read-only)", false},
	{"MPEGFLOW_OPERATOR_NAMESPACE", "POD_NAMESPACE", "namespace of the pool objects and the leader Lease (required)", true},
	{"MPEGFLOW_ENCODER_IMAGE", "", "encoder image the ScaledJobs run (required)", true},
	{"MPEGFLOW_OPERATOR_COORDINATOR", "", "coordinator Service host:port the pods dial (required)", true},
	{"MPEGFLOW_OPERATOR_COORDINATOR_NAMESPACE", "the namespace", "namespace of the coordinator pods (NetworkPolicy)", true},
	{"MPEGFLOW_OPERATOR_REDIS_ADDRESS", "", "Redis host:port KEDA polls (required)", true},
	{"MPEGFLOW_OPERATOR_REDIS_DATABASE", "0", "Redis database index", true},
	{"MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET", "mpegflow-keda-redis", "Secret with username/password of KEDA's Redis user (+ping +eval +type +llen)", true},
	{"REDIS_KEY_PREFIX", "mpegflow", "queue key prefix, as the apiserver's", true},
	{"MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS", "", "comma-separated CIDRs of object storage the pods may reach", true},
	{"MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS", "443", "comma-separated TCP ports of object storage", true},
	{"MPEGFLOW_OPERATOR_LABELS", "", "extra labels on every object, k=v,k=v", true},
	{"MPEGFLOW_OPERATOR_DEFAULT_POOL", "", "JSON settings of the shared default pool (overrides its row)", true},
	{"MPEGFLOW_OPERATOR_ENCODER_CPU_REQUEST", "1", "CPU request of encode pods whose pool sets no CPU request or limit (0: none)", true},
	{"MPEGFLOW_OPERATOR_ENCODER_MEMORY_REQUEST", "2Gi", "memory request of encode pods whose pool sets no memory request or limit (0: none)", true},
	{"MPEGFLOW_OPERATOR_ENCODER_EPHEMERAL_STORAGE_REQUEST", "", "ephemeral-storage request of encode pods (default: the scratch limit plus 1Gi of /tmp; 0: none)", true},
	{"MPEGFLOW_OPERATOR_PERIOD", "30s", "reconcile period (changes also reconcile at once through LISTEN)", false},
	{"MPEGFLOW_OPERATOR_LEASE_DURATION", "30s", "leader Lease duration", false},
	{"MPEGFLOW_SERVER_SECRET", "", "signs the pools' worker tokens (required)", true},
	{"MPEGFLOW_ALLOW_HTTP", "false", "passed to encode pods: fetch plain http:// inputs (development only)", true},
	{"MPEGFLOW_EGRESS_ALLOW", "", "passed to encode pods: CIDRs inputs may come from although not public (development only)", true},
	{"POD_NAME", "hostname", "leader election identity", false},
	{"MPEGFLOW_LOG_LEVEL", "info", "debug, info, warn or error (as every role)", false},
	{"MPEGFLOW_OPERATOR_HEALTH_ADDR", ":8081", "listen address of /healthz and /readyz", false},
	{"MPEGFLOW_OPERATOR_METRICS_ADDR", ":9090", "listen address of the Prometheus /metrics endpoint", false},
	{"MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS", "3", "the leader is unready once no reconcile pass succeeded for this many periods", false},
	{"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN", "false", "run even when the database login can write (refused by default: the operator's login must be read-only)", false},
}

// RunConfig is how the operator process runs, beside what it renders.
type RunConfig struct {
	DatabaseURL string
	Period      time.Duration
	Leader      LeaderConfig
	// LogLevel is MPEGFLOW_LOG_LEVEL, read as every server role reads it.
	LogLevel slog.Level
	// HealthAddr serves /healthz and /readyz, MetricsAddr /metrics.
	HealthAddr, MetricsAddr string
	// UnreadyAfterPeriods is StatusConfig.UnreadyAfterPeriods.
	UnreadyAfterPeriods int
	// AllowWriteLogin lets the operator run on a login that can write
	// Postgres (CheckReadOnly warns instead of refusing).
	AllowWriteLogin bool
}

// FromEnv reads the operator's configuration.
func FromEnv(getenv func(string) string) (Config, RunConfig, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	var errs []error
	host, _ := os.Hostname()
	cfg := Config{
		Namespace:            cmp.Or(get("MPEGFLOW_OPERATOR_NAMESPACE"), get("POD_NAMESPACE")),
		Image:                get("MPEGFLOW_ENCODER_IMAGE"),
		Coordinator:          get("MPEGFLOW_OPERATOR_COORDINATOR"),
		CoordinatorNamespace: get("MPEGFLOW_OPERATOR_COORDINATOR_NAMESPACE"),
		RedisAddress:         get("MPEGFLOW_OPERATOR_REDIS_ADDRESS"),
		RedisKeyPrefix:       get("REDIS_KEY_PREFIX"),
		RedisAuthSecret:      get("MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET"),
		ObjectStorageCIDRs:   split(get("MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS")),
		ServerSecret:         []byte(get("MPEGFLOW_SERVER_SECRET")),
		EncoderEgressAllow:   get("MPEGFLOW_EGRESS_ALLOW"),

		DefaultCPURequest:              get("MPEGFLOW_OPERATOR_ENCODER_CPU_REQUEST"),
		DefaultMemoryRequest:           get("MPEGFLOW_OPERATOR_ENCODER_MEMORY_REQUEST"),
		DefaultEphemeralStorageRequest: get("MPEGFLOW_OPERATOR_ENCODER_EPHEMERAL_STORAGE_REQUEST"),
	}
	if v := get("MPEGFLOW_ALLOW_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MPEGFLOW_ALLOW_HTTP: want true or false, got %q", v))
		}
		cfg.EncoderAllowHTTP = b
	}
	if _, err := netguard.ParseAllow(cfg.EncoderEgressAllow); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_EGRESS_ALLOW: %w", err))
	}
	if v := get("MPEGFLOW_OPERATOR_REDIS_DATABASE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_REDIS_DATABASE: want a database index, got %q", v))
		}
		cfg.RedisDatabase = n
	}
	for _, v := range split(get("MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS")) {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS: %q is not a port", v))
			continue
		}
		cfg.ObjectStoragePorts = append(cfg.ObjectStoragePorts, int32(n))
	}
	for _, kv := range split(get("MPEGFLOW_OPERATOR_LABELS")) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_LABELS: %q is not key=value", kv))
			continue
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
	if v := get("MPEGFLOW_OPERATOR_DEFAULT_POOL"); v != "" {
		set := store.DefaultPoolSettings()
		if err := json.Unmarshal([]byte(v), &set); err != nil {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_DEFAULT_POOL: want the pool settings as JSON: %w", err))
		}
		cfg.DefaultPool = &set
	}
	run := RunConfig{
		DatabaseURL:         cmp.Or(get("MPEGFLOW_OPERATOR_DATABASE_URL"), get("DATABASE_URL")),
		Leader:              LeaderConfig{Namespace: cfg.Namespace, Identity: cmp.Or(get("POD_NAME"), host)},
		HealthAddr:          cmp.Or(get("MPEGFLOW_OPERATOR_HEALTH_ADDR"), ":8081"),
		MetricsAddr:         cmp.Or(get("MPEGFLOW_OPERATOR_METRICS_ADDR"), ":9090"),
		UnreadyAfterPeriods: defaultUnreadyAfterPeriods,
	}
	if err := run.LogLevel.UnmarshalText([]byte(cmp.Or(get("MPEGFLOW_LOG_LEVEL"), "info"))); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_LOG_LEVEL: %w", err))
	}
	if v := get("MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_UNREADY_AFTER_PERIODS: want a whole number of periods of at least 1, got %q", v))
		}
		run.UnreadyAfterPeriods = n
	}
	if v := get("MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN: want true or false, got %q", v))
		}
		run.AllowWriteLogin = b
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"MPEGFLOW_OPERATOR_PERIOD", &run.Period, 30 * time.Second}, {"MPEGFLOW_OPERATOR_LEASE_DURATION", &run.Leader.LeaseDuration, 30 * time.Second}} {
		*d.dst = d.def
		if v := get(d.name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				errs = append(errs, fmt.Errorf("%s: want a positive duration such as 30s, got %q", d.name, v))
				continue
			}
			*d.dst = x
		}
	}
	if run.DatabaseURL == "" {
		errs = append(errs, errors.New("MPEGFLOW_OPERATOR_DATABASE_URL (or DATABASE_URL) is required: a login in role mpegflow_operator"))
	}
	if _, err := cfg.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	return cfg, run, errors.Join(errs...)
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
