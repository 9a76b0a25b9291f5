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
	{"MPEGFLOW_OPERATOR_REDIS_PASSWORD_ONLY", "false", "KEDA authenticates with the auth Secret's password only (no ACL user)", true},
	{"MPEGFLOW_OPERATOR_REDIS_TLS", "false", "KEDA reaches Redis over TLS (enableTLS); the chart sets it with the server's REDIS_TLS", true},
	{"MPEGFLOW_OPERATOR_REDIS_TLS_SECRET", "", "Secret whose ca.crt verifies Redis (and tls.crt/tls.key: KEDA's client certificate)", true},
	{"MPEGFLOW_OPERATOR_REDIS_TLS_CLIENT_CERT", "false", "KEDA presents tls.crt/tls.key of that Secret (mutual TLS)", true},
	{"MPEGFLOW_OPERATOR_REDIS_TLS_INSECURE_SKIP_VERIFY", "false", "KEDA accepts any Redis certificate (unsafeSsl; tests only)", true},
	{"REDIS_KEY_PREFIX", "mpegflow", "queue key prefix, as the apiserver's", true},
	{"MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS", "", "comma-separated CIDRs of object storage the pods may reach", true},
	{"MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS", "443", "comma-separated TCP ports of object storage", true},
	{"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_NAMESPACE", "", "namespace of an in-cluster S3 server (MinIO) encode pods may reach; empty: none", true},
	{"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_POD_LABELS", "", "labels of that S3 server's pods, k=v,k=v (required with the namespace)", true},
	{"MPEGFLOW_OPERATOR_IN_CLUSTER_S3_PORTS", "9000", "comma-separated TCP ports of that S3 server's pods", true},
	{"MPEGFLOW_OPERATOR_PUBLIC_EGRESS", "true", "let encode pods reach the public internet on TCP 443 (and 80 with MPEGFLOW_ALLOW_HTTP)", true},
	{"MPEGFLOW_OPERATOR_PUBLIC_EGRESS_EXCEPT", "private, link-local, loopback, multicast and reserved ranges", "comma-separated CIDRs cut out of the public egress rule (replaces the default list)", true},
	{"MPEGFLOW_OPERATOR_DNS_NAMESPACE", "kube-system", "namespace of the cluster DNS pods", true},
	{"MPEGFLOW_OPERATOR_DNS_POD_LABELS", "k8s-app=kube-dns", "labels of the cluster DNS pods, k=v,k=v", true},
	{"MPEGFLOW_OPERATOR_DNS_CIDRS", "", "comma-separated resolver CIDRs encode pods may query on port 53, e.g. 169.254.20.10/32 (NodeLocal DNSCache)", true},
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
		RedisTLSSecret:       get("MPEGFLOW_OPERATOR_REDIS_TLS_SECRET"),
		ObjectStorageCIDRs:   split(get("MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS")),
		InClusterS3Namespace: get("MPEGFLOW_OPERATOR_IN_CLUSTER_S3_NAMESPACE"),
		PublicEgressExcept:   split(get("MPEGFLOW_OPERATOR_PUBLIC_EGRESS_EXCEPT")),
		DNSNamespace:         get("MPEGFLOW_OPERATOR_DNS_NAMESPACE"),
		DNSCIDRs:             split(get("MPEGFLOW_OPERATOR_DNS_CIDRS")),
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
	for _, b := range []struct {
		name string
		dst  *bool
		not  bool
	}{
		{"MPEGFLOW_OPERATOR_PUBLIC_EGRESS", &cfg.NoPublicEgress, true},
		{"MPEGFLOW_OPERATOR_REDIS_PASSWORD_ONLY", &cfg.RedisPasswordOnly, false},
		{"MPEGFLOW_OPERATOR_REDIS_TLS", &cfg.RedisTLS, false},
		{"MPEGFLOW_OPERATOR_REDIS_TLS_CLIENT_CERT", &cfg.RedisTLSClientCert, false},
		{"MPEGFLOW_OPERATOR_REDIS_TLS_INSECURE_SKIP_VERIFY", &cfg.RedisTLSInsecureSkipVerify, false},
	} {
		v := get(b.name)
		if v == "" {
			continue
		}
		x, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false, got %q", b.name, v))
		}
		*b.dst = x != b.not
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
	ports := func(name string) []int32 {
		var out []int32
		for _, v := range split(get(name)) {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a port", name, v))
				continue
			}
			out = append(out, int32(n))
		}
		return out
	}
	cfg.ObjectStoragePorts = ports("MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS")
	cfg.InClusterS3Ports = ports("MPEGFLOW_OPERATOR_IN_CLUSTER_S3_PORTS")
	labels := func(name string) map[string]string {
		var out map[string]string
		for _, kv := range split(get(name)) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				errs = append(errs, fmt.Errorf("%s: %q is not key=value", name, kv))
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
		return out
	}
	cfg.Labels = labels("MPEGFLOW_OPERATOR_LABELS")
	cfg.InClusterS3PodLabels = labels("MPEGFLOW_OPERATOR_IN_CLUSTER_S3_POD_LABELS")
	cfg.DNSPodLabels = labels("MPEGFLOW_OPERATOR_DNS_POD_LABELS")
	if v := get("MPEGFLOW_OPERATOR_DEFAULT_POOL"); v != "" {
		// The settings as the API spells them (the chart's defaultPool),
		// over the defaults; an unknown field is a typo, not a setting.
		wire := store.DefaultPoolSettings().Wire()
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&wire); err != nil {
			errs = append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_DEFAULT_POOL: want the pool settings as JSON (the fields of PATCH /v1/pools/{id}): %w", err))
		}
		set := store.PoolSettingsFromWire(wire)
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
