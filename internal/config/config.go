// Package config reads MpegFlow's settings from the environment, the one
// source every role (serve, operator, encode, dev) shares. Each variable is
// listed in Vars with its default and meaning; the README's table is that
// list.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
)

// Var documents one environment variable.
type Var struct {
	Name, Default, Meaning string
}

// Vars lists every variable Load reads.
var Vars = []Var{
	{"DATABASE_URL", "", "Postgres connection URL (required by serve, migrate, admin)"},
	{"REDIS_URL", "", "Redis URL, e.g. redis://localhost:6379/0 (required by serve)"},
	{"REDIS_KEY_PREFIX", "mpegflow", "prefix of every Redis key (KEDA's listName must match)"},
	{"REDIS_TLS", "", "true: REDIS_URL must be rediss://, false: must not be; empty: as REDIS_URL says (the chart sets it from redis.tls.enabled, like KEDA's enableTLS)"},
	{"REDIS_TLS_CA_FILE", "", "PEM CA bundle that verifies Redis's certificate (default: the system roots)"},
	{"REDIS_TLS_CERT_FILE", "", "client certificate for Redis (mutual TLS), with REDIS_TLS_KEY_FILE"},
	{"REDIS_TLS_KEY_FILE", "", "key of REDIS_TLS_CERT_FILE"},
	{"REDIS_TLS_INSECURE_SKIP_VERIFY", "false", "accept any Redis certificate (tests only)"},
	{"MPEGFLOW_OPERATOR_REDIS_ADDRESS", "", "the Redis host:port KEDA polls (the operator's setting; the chart passes it to the server when it runs the operator): set, REDIS_URL must point at the same host, port and database, or serve refuses to start"},
	{"MPEGFLOW_OPERATOR_REDIS_DATABASE", "0", "the Redis database KEDA polls, checked against REDIS_URL's with MPEGFLOW_OPERATOR_REDIS_ADDRESS"},
	{"HTTP_ADDR", ":8080", "REST API and WebSocket listen address"},
	{"METRICS_ADDR", ":9090", "Prometheus metrics listen address"},
	{"GRPC_ADDR", ":50051", "coordinator (gRPC) listen address"},
	{"MPEGFLOW_SERVER_SECRET", "", "at least 32 bytes; signs pool worker tokens and seals encrypted jobs' content keys (required by serve; changing it makes stored content keys unreadable)"},
	{"MPEGFLOW_PUBLIC_URL", "", "the REST API's external base URL, e.g. https://video.example.com; encrypted outputs' key and license URIs start with it. Empty: http://localhost with HTTP_ADDR's port (development)"},
	{"MPEGFLOW_LEASE", "60s", "how long a claim lives without a heartbeat"},
	{"MPEGFLOW_RETRY_BACKOFF_BASE", "10s", "first retry wait; doubles per attempt, with ±20% jitter"},
	{"MPEGFLOW_RETRY_BACKOFF_MAX", "15m", "longest retry wait"},
	{"MPEGFLOW_STALE_JOB_RECOVERY_PERIOD", "60s", "period of Stale Job Recovery"},
	{"MPEGFLOW_STALE_WORKER_SWEEP_PERIOD", "60s", "period of the Stale Worker Sweeper"},
	{"MPEGFLOW_OFFLINE_WORKER_REAP_PERIOD", "300s", "period of the Offline Worker Reaper"},
	{"MPEGFLOW_DELAYED_PROMOTE_PERIOD", "5s", "period of the Delayed Job Promoter"},
	{"MPEGFLOW_QUEUE_RECONCILE_PERIOD", "30s", "period of the Queue Reconciler"},
	{"MPEGFLOW_WEBHOOK_PERIOD", "5s", "period of the Webhook Executor"},
	{"MPEGFLOW_WEBHOOK_TIMEOUT", "10s", "longest wait for a webhook receiver's answer (one attempt)"},
	{"MPEGFLOW_WEBHOOK_RETRY_WINDOW", "24h", "how long a failing delivery is retried (backoff 30s doubling, at most 4h apart)"},
	{"MPEGFLOW_WEBHOOK_CIRCUIT_THRESHOLD", "20", "failed attempts in a row that disable a webhook (PATCH enabled=true re-enables it)"},
	{"MPEGFLOW_BATCH_PERIOD", "2s", "period of the Batch Expander (resumes unfinished expansions) and the Batch Releaser (max_concurrency, submit_rate)"},
	{"MPEGFLOW_SCHEDULE_PERIOD", "1s", "how often the Schedule Evaluator applies pools' pause-window edges (an edge takes effect within this on every replica)"},
	{"MPEGFLOW_BATCH_CHUNK", "5000", "inputs a batch expansion commits per transaction (1 to 50000)"},
	{"MPEGFLOW_MULTIPART_THRESHOLD_BYTES", "104857600", "assets larger than this are uploaded in parts (presigned multipart upload); 1 to 5368709120 (S3's largest single PUT)"},
	{"MPEGFLOW_MULTIPART_PART_SIZE_BYTES", "16777216", "preferred part size of multipart uploads, 5242880 to 5368709120; files that would need more than 10,000 parts get larger ones"},
	{"MPEGFLOW_UPLOAD_TTL", "168h", "a multipart upload still open this long after its asset was created is aborted and the asset marked expired"},
	{"MPEGFLOW_STALE_UPLOAD_SWEEP_PERIOD", "10m", "period of the Stale Upload Sweeper"},
	{"S3_BUCKET", "", "bucket for assets and outputs (required by serve)"},
	{"S3_ENDPOINT", "", "S3-compatible endpoint URL; empty for AWS S3"},
	{"S3_REGION", "us-east-1", "S3 region"},
	{"S3_ACCESS_KEY_ID", "", "S3 access key; empty (with S3_SECRET_ACCESS_KEY) uses the AWS default credential chain: IRSA, EKS Pod Identity, instance role, AWS_* variables"},
	{"S3_SECRET_ACCESS_KEY", "", "S3 secret key"},
	{"S3_FORCE_PATH_STYLE", "false", "use path-style bucket addressing (MinIO, versitygw)"},
	{"S3_PRESIGN_TTL", "1h", "lifetime of presigned URLs"},
	{"MPEGFLOW_CONSOLE_UPLOADS", "false", "at start, set the bucket's CORS rules so the web console (at MPEGFLOW_PUBLIC_URL's origin) may upload files straight to storage; this replaces the bucket's CORS configuration (off: set such a rule yourself, docs/console.md)"},
	{"MPEGFLOW_BODY_LIMIT_BYTES", "1048576", "largest accepted request body; larger answer 413"},
	{"MPEGFLOW_ALLOW_HTTP", "false", "accept plain http:// job inputs and webhook URLs (development only)"},
	{"MPEGFLOW_EGRESS_ALLOW", "", "comma-separated CIDRs job inputs and webhooks may reach although not public, e.g. 127.0.0.0/8,::1 (tests and development only)"},
	{"MPEGFLOW_RATE_LIMIT_ENABLED", "true", "limit request rates per API key, per organization and failed authentications per client address (token buckets in Redis that all replicas share)"},
	{"MPEGFLOW_RATE_LIMIT_KEY_RATE", "20/s", "sustained requests per API key: n/s, n/m or n/h"},
	{"MPEGFLOW_RATE_LIMIT_KEY_BURST", "200", "requests an API key may send at once (at most the organization's burst)"},
	{"MPEGFLOW_RATE_LIMIT_ORG_RATE", "50/s", "sustained requests per organization, all its keys together (at least the key rate)"},
	{"MPEGFLOW_RATE_LIMIT_ORG_BURST", "500", "requests an organization may send at once"},
	{"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_RATE", "60/m", "sustained requests with an invalid API key per client address"},
	{"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_BURST", "60", "invalid-key requests a client address may send at once; past them it gets 429 for any key until budget returns"},
	{"MPEGFLOW_TRUSTED_PROXIES", "", "comma-separated CIDRs of the reverse proxies (the ingress controller) whose X-Forwarded-For names the client address; empty: the TCP peer is the client"},
	{"MPEGFLOW_PLATFORM_POLICY", "", "JSON platform policy (per plan: dedicated pools, pool and replica ceilings, GPUs, node selector and toleration allowlists, resource ceilings; docs/design/0018-platform-policy.md) that serve stores when Postgres has none yet; afterwards PUT /v1/platform/policy changes it. Empty: the built-in default (the chart's platformPolicy)"},
	{"MPEGFLOW_LOG_LEVEL", "info", "debug, info, warn or error"},
}

// Config is the parsed environment.
type Config struct {
	DatabaseURL    string
	RedisURL       string
	RedisKeyPrefix string
	// RedisTLS applies to a rediss:// RedisURL (RedisOptions).
	RedisTLS     RedisTLS
	HTTPAddr     string
	MetricsAddr  string
	GRPCAddr     string
	ServerSecret string
	// PublicURL is MPEGFLOW_PUBLIC_URL, or the development default.
	PublicURL   string
	Lease       time.Duration
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Periods of the background services.
	StaleJobRecovery, StaleWorkerSweep, OfflineWorkerReap, DelayedPromote, QueueReconcile, BatchPeriod time.Duration
	// SchedulePeriod is how often the Schedule Evaluator looks for pause-window edges.
	SchedulePeriod time.Duration
	// The Webhook Executor: period, attempt timeout, retry window, circuit threshold.
	WebhookPeriod, WebhookTimeout, WebhookRetryWindow time.Duration
	WebhookCircuitThreshold                           int
	// EgressAllow is MPEGFLOW_EGRESS_ALLOW as given (validated): address
	// ranges the SSRF guard accepts although they are not public.
	EgressAllow string
	// BatchChunk is how many inputs one expansion transaction commits.
	BatchChunk int
	// MultipartThreshold and PartSize shape uploads of large assets;
	// UploadTTL and StaleUploadSweep drive the Stale Upload Sweeper.
	MultipartThreshold, PartSize int64
	UploadTTL, StaleUploadSweep  time.Duration
	S3                           objstore.Config
	BodyLimit                    int
	AllowHTTP                    bool
	LogLevel                     slog.Level
	// RateLimitEnabled turns the request rate limits on.
	RateLimitEnabled bool
	// ConsoleUploadOrigins are the origins whose pages the server lets
	// upload to the bucket at start (its CORS rules); none: the bucket's
	// rules are left alone. MPEGFLOW_CONSOLE_UPLOADS gives
	// MPEGFLOW_PUBLIC_URL's origin.
	ConsoleUploadOrigins []string
	// RateLimit holds the limits, validated (Clock, Timeout, Pause and
	// WarnEvery are left to the limiter's defaults).
	RateLimit ratelimit.Config
	// TrustedProxies is MPEGFLOW_TRUSTED_PROXIES as given (validated).
	TrustedProxies string
	// PlatformPolicy is MPEGFLOW_PLATFORM_POLICY, validated: the policy
	// serve seeds when none is stored.
	PlatformPolicy apiv1.PlatformPolicy
}

// Load reads the environment through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var errs []error
	parseBool := func(name string) bool {
		b, err := strconv.ParseBool(get(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false: %w", name, err))
		}
		return b
	}
	c := Config{
		DatabaseURL:    get("DATABASE_URL"),
		RedisURL:       get("REDIS_URL"),
		RedisKeyPrefix: get("REDIS_KEY_PREFIX"),
		HTTPAddr:       get("HTTP_ADDR"),
		MetricsAddr:    get("METRICS_ADDR"),
		GRPCAddr:       get("GRPC_ADDR"),
		ServerSecret:   get("MPEGFLOW_SERVER_SECRET"),
		PublicURL:      get("MPEGFLOW_PUBLIC_URL"),
		S3: objstore.Config{
			Endpoint: get("S3_ENDPOINT"), Region: get("S3_REGION"), Bucket: get("S3_BUCKET"),
			AccessKeyID: get("S3_ACCESS_KEY_ID"), SecretAccessKey: get("S3_SECRET_ACCESS_KEY"),
			PathStyle: parseBool("S3_FORCE_PATH_STYLE"),
		},
		AllowHTTP: parseBool("MPEGFLOW_ALLOW_HTTP"),
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"MPEGFLOW_LEASE", &c.Lease}, {"MPEGFLOW_RETRY_BACKOFF_BASE", &c.BackoffBase}, {"MPEGFLOW_RETRY_BACKOFF_MAX", &c.BackoffMax},
		{"MPEGFLOW_STALE_JOB_RECOVERY_PERIOD", &c.StaleJobRecovery}, {"MPEGFLOW_STALE_WORKER_SWEEP_PERIOD", &c.StaleWorkerSweep},
		{"MPEGFLOW_OFFLINE_WORKER_REAP_PERIOD", &c.OfflineWorkerReap}, {"MPEGFLOW_DELAYED_PROMOTE_PERIOD", &c.DelayedPromote},
		{"MPEGFLOW_QUEUE_RECONCILE_PERIOD", &c.QueueReconcile}, {"MPEGFLOW_WEBHOOK_PERIOD", &c.WebhookPeriod},
		{"MPEGFLOW_WEBHOOK_TIMEOUT", &c.WebhookTimeout}, {"MPEGFLOW_WEBHOOK_RETRY_WINDOW", &c.WebhookRetryWindow},
		{"MPEGFLOW_BATCH_PERIOD", &c.BatchPeriod}, {"MPEGFLOW_SCHEDULE_PERIOD", &c.SchedulePeriod},
		{"MPEGFLOW_UPLOAD_TTL", &c.UploadTTL}, {"MPEGFLOW_STALE_UPLOAD_SWEEP_PERIOD", &c.StaleUploadSweep},
	} {
		v, err := time.ParseDuration(get(d.name))
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration such as 30s", d.name))
		}
		*d.dst = v
	}
	ttl, err := time.ParseDuration(get("S3_PRESIGN_TTL"))
	if err != nil || ttl < time.Minute || ttl > 7*24*time.Hour {
		errs = append(errs, errors.New("S3_PRESIGN_TTL: want a duration from 1m to 168h"))
	}
	c.S3.PresignTTL = ttl
	c.BodyLimit, err = strconv.Atoi(get("MPEGFLOW_BODY_LIMIT_BYTES"))
	if err != nil || c.BodyLimit < 1024 {
		errs = append(errs, errors.New("MPEGFLOW_BODY_LIMIT_BYTES: want an integer of at least 1024"))
	}
	c.WebhookCircuitThreshold, err = strconv.Atoi(get("MPEGFLOW_WEBHOOK_CIRCUIT_THRESHOLD"))
	if err != nil || c.WebhookCircuitThreshold < 1 {
		errs = append(errs, errors.New("MPEGFLOW_WEBHOOK_CIRCUIT_THRESHOLD: want a positive integer"))
	}
	var tlsErrs []error
	c.RedisTLS, tlsErrs = loadRedisTLS(get, c.RedisURL)
	errs = append(errs, tlsErrs...)
	errs = append(errs, checkKEDATarget(get, c.RedisURL)...)
	if c.PublicURL, err = publicURL(c.PublicURL, c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_PUBLIC_URL: %w", err))
	}
	c.EgressAllow = get("MPEGFLOW_EGRESS_ALLOW")
	if _, err := netguard.ParseAllow(c.EgressAllow); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_EGRESS_ALLOW: %w", err))
	}
	c.BatchChunk, err = strconv.Atoi(get("MPEGFLOW_BATCH_CHUNK"))
	if err != nil || c.BatchChunk < 1 || c.BatchChunk > 50_000 {
		errs = append(errs, errors.New("MPEGFLOW_BATCH_CHUNK: want an integer from 1 to 50000"))
	}
	c.MultipartThreshold, err = strconv.ParseInt(get("MPEGFLOW_MULTIPART_THRESHOLD_BYTES"), 10, 64)
	if err != nil || c.MultipartThreshold < 1 || c.MultipartThreshold > objstore.MaxPartSize {
		errs = append(errs, fmt.Errorf("MPEGFLOW_MULTIPART_THRESHOLD_BYTES: want an integer from 1 to %d", int64(objstore.MaxPartSize)))
	}
	c.PartSize, err = strconv.ParseInt(get("MPEGFLOW_MULTIPART_PART_SIZE_BYTES"), 10, 64)
	if err != nil || c.PartSize < objstore.MinPartSize || c.PartSize > objstore.MaxPartSize {
		errs = append(errs, fmt.Errorf("MPEGFLOW_MULTIPART_PART_SIZE_BYTES: want an integer from %d to %d", objstore.MinPartSize, int64(objstore.MaxPartSize)))
	}
	c.RateLimitEnabled = parseBool("MPEGFLOW_RATE_LIMIT_ENABLED")
	if parseBool("MPEGFLOW_CONSOLE_UPLOADS") {
		if get("MPEGFLOW_PUBLIC_URL") == "" {
			errs = append(errs, errors.New("MPEGFLOW_CONSOLE_UPLOADS: needs MPEGFLOW_PUBLIC_URL, the console's address, whose origin the bucket's CORS rule allows (the development default would replace the bucket's rules with one for localhost)"))
		} else if c.PublicURL != "" { // else publicURL reported it
			c.ConsoleUploadOrigins = []string{browserOrigin(c.PublicURL)}
		}
	}
	limitsParsed := true
	for _, l := range []struct {
		rate, burst string
		dst         *ratelimit.Limit
	}{
		{"MPEGFLOW_RATE_LIMIT_KEY_RATE", "MPEGFLOW_RATE_LIMIT_KEY_BURST", &c.RateLimit.Key},
		{"MPEGFLOW_RATE_LIMIT_ORG_RATE", "MPEGFLOW_RATE_LIMIT_ORG_BURST", &c.RateLimit.Org},
		{"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_RATE", "MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_BURST", &c.RateLimit.AuthFailure},
	} {
		r, err := ratelimit.ParseRate(get(l.rate))
		if err != nil {
			errs, limitsParsed = append(errs, fmt.Errorf("%s: %w", l.rate, err)), false
		}
		b, err := strconv.Atoi(get(l.burst))
		if err != nil || b < 1 || b > ratelimit.MaxBurst {
			errs, limitsParsed = append(errs, fmt.Errorf("%s: want an integer from 1 to %d", l.burst, ratelimit.MaxBurst)), false
		}
		*l.dst = ratelimit.Limit{Rate: r, Burst: b}
	}
	if err := c.RateLimit.Key.Within(c.RateLimit.Org); err != nil && limitsParsed {
		errs = append(errs, fmt.Errorf("MPEGFLOW_RATE_LIMIT_KEY_RATE and _BURST: a key's limit must fit inside MPEGFLOW_RATE_LIMIT_ORG_RATE and _BURST: %w", err))
	}
	if c.PlatformPolicy, err = parsePlatformPolicy(get("MPEGFLOW_PLATFORM_POLICY")); err != nil {
		errs = append(errs, err)
	}
	c.TrustedProxies = get("MPEGFLOW_TRUSTED_PROXIES")
	if _, err := netguard.ParseAllow(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_TRUSTED_PROXIES: %w", err))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("MPEGFLOW_LOG_LEVEL"))); err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_LOG_LEVEL: %w", err))
	}
	return c, errors.Join(errs...)
}

// Guard is the SSRF guard these settings describe.
func (c Config) Guard() *netguard.Guard {
	allow, _ := netguard.ParseAllow(c.EgressAllow) // validated by Load
	return netguard.New(netguard.Config{AllowHTTP: c.AllowHTTP, Allow: allow})
}

// Proxies are the trusted reverse proxies of MPEGFLOW_TRUSTED_PROXIES.
func (c Config) Proxies() []netip.Prefix {
	p, _ := netguard.ParseAllow(c.TrustedProxies) // validated by Load
	return p
}

// FromEnv is Load(os.Getenv).
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Require reports which of the named settings are empty.
func (c Config) Require(names ...string) error {
	vals := map[string]string{"DATABASE_URL": c.DatabaseURL, "REDIS_URL": c.RedisURL, "S3_BUCKET": c.S3.Bucket, "MPEGFLOW_SERVER_SECRET": c.ServerSecret}
	var missing []string
	for _, n := range names {
		if vals[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("set %s in the environment", strings.Join(missing, ", "))
	}
	if slices.Contains(names, "MPEGFLOW_SERVER_SECRET") && len(c.ServerSecret) < 32 {
		return errors.New("MPEGFLOW_SERVER_SECRET must be at least 32 bytes (e.g. openssl rand -hex 32)")
	}
	return nil
}

// browserOrigin is the Origin header a browser sends from pages under
// base (a checked absolute URL): scheme and host in lower case, without
// the scheme's default port.
func browserOrigin(base string) string {
	u, _ := url.Parse(base) // checked by publicURL
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	defaultPort := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	if port := u.Port(); port != "" && port != defaultPort {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// publicURL checks an external base URL (an absolute http or https URL
// without query, fragment or trailing slash), or derives the development
// default from the REST listen address when it is empty.
func publicURL(raw, httpAddr string) (string, error) {
	if raw == "" {
		_, port, err := net.SplitHostPort(httpAddr)
		if err != nil || port == "" || port == "0" {
			port = "8080"
		}
		return "http://localhost:" + port, nil
	}
	raw = strings.TrimSuffix(raw, "/")
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "", fmt.Errorf("%q: want an absolute http or https URL", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(raw, "\"<>&\r\n "):
		return "", fmt.Errorf("%q: want a base URL without query, fragment, credentials or markup", raw)
	}
	return raw, nil
}
