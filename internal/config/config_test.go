package config_test

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
)

// env is a fake environment for Load.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	want := config.Config{
		RedisKeyPrefix: "mpegflow",
		HTTPAddr:       ":8080",
		MetricsAddr:    ":9090",
		GRPCAddr:       ":50051",
		PublicURL:      "http://localhost:8080",
		Lease:          time.Minute, BackoffBase: 10 * time.Second, BackoffMax: 15 * time.Minute,
		StaleJobRecovery: time.Minute, StaleWorkerSweep: time.Minute, OfflineWorkerReap: 5 * time.Minute,
		DelayedPromote: 5 * time.Second, QueueReconcile: 30 * time.Second, BatchPeriod: 2 * time.Second, BatchChunk: 5000,
		SchedulePeriod: time.Second,
		WebhookPeriod:  5 * time.Second, WebhookTimeout: 10 * time.Second, WebhookRetryWindow: 24 * time.Hour, WebhookCircuitThreshold: 20,
		MultipartThreshold: 100 << 20, PartSize: 16 << 20, UploadTTL: 7 * 24 * time.Hour, StaleUploadSweep: 10 * time.Minute,
		S3:        objstore.Config{Region: "us-east-1", PathStyle: false, PresignTTL: time.Hour},
		BodyLimit: 1 << 20,
		AllowHTTP: false,
		LogLevel:  slog.LevelInfo,
		// The limiter's own defaults: config and ratelimit.New agree.
		RateLimitEnabled: true,
		RateLimit:        ratelimit.Config{Key: ratelimit.DefaultKey, Org: ratelimit.DefaultOrg, AuthFailure: ratelimit.DefaultAuthFailure},
		PlatformPolicy:   apiv1.DefaultPlatformPolicy(),
	}
	for name, vars := range map[string]map[string]string{
		"unset":      {},
		"blank":      blankAll(""),
		"whitespace": blankAll(" \t "),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(env(vars))
			require.NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// blankAll sets every documented variable to value.
func blankAll(value string) map[string]string {
	m := map[string]string{}
	for _, v := range config.Vars {
		m[v.Name] = value
	}
	return m
}

func TestLoadEverySetting(t *testing.T) {
	t.Parallel()
	got, err := config.Load(env(map[string]string{
		"DATABASE_URL":                           "postgres://db/mpegflow",
		"REDIS_URL":                              "redis://redis:6379/1",
		"REDIS_KEY_PREFIX":                       " tenant-a ",
		"HTTP_ADDR":                              "127.0.0.1:8081",
		"METRICS_ADDR":                           ":9191",
		"S3_BUCKET":                              "media",
		"S3_ENDPOINT":                            "http://s3.local:7070",
		"S3_REGION":                              "eu-west-3",
		"S3_ACCESS_KEY_ID":                       "AKIA",
		"S3_SECRET_ACCESS_KEY":                   "secret",
		"S3_FORCE_PATH_STYLE":                    "true",
		"S3_PRESIGN_TTL":                         "15m",
		"MPEGFLOW_BODY_LIMIT_BYTES":              "1024",
		"MPEGFLOW_ALLOW_HTTP":                    "1",
		"MPEGFLOW_LOG_LEVEL":                     "debug",
		"GRPC_ADDR":                              ":50052",
		"MPEGFLOW_SERVER_SECRET":                 "0123456789abcdef0123456789abcdef",
		"MPEGFLOW_PUBLIC_URL":                    "https://video.example.com/",
		"MPEGFLOW_LEASE":                         "30s",
		"MPEGFLOW_RETRY_BACKOFF_BASE":            "1s",
		"MPEGFLOW_RETRY_BACKOFF_MAX":             "1m",
		"MPEGFLOW_STALE_JOB_RECOVERY_PERIOD":     "61s",
		"MPEGFLOW_STALE_WORKER_SWEEP_PERIOD":     "62s",
		"MPEGFLOW_OFFLINE_WORKER_REAP_PERIOD":    "301s",
		"MPEGFLOW_DELAYED_PROMOTE_PERIOD":        "6s",
		"MPEGFLOW_QUEUE_RECONCILE_PERIOD":        "31s",
		"MPEGFLOW_WEBHOOK_PERIOD":                "7s",
		"MPEGFLOW_WEBHOOK_TIMEOUT":               "3s",
		"MPEGFLOW_WEBHOOK_RETRY_WINDOW":          "48h",
		"MPEGFLOW_WEBHOOK_CIRCUIT_THRESHOLD":     "5",
		"MPEGFLOW_EGRESS_ALLOW":                  "127.0.0.0/8,::1",
		"MPEGFLOW_BATCH_PERIOD":                  "3s",
		"MPEGFLOW_SCHEDULE_PERIOD":               "2s",
		"MPEGFLOW_BATCH_CHUNK":                   "2000",
		"MPEGFLOW_MULTIPART_THRESHOLD_BYTES":     "209715200",
		"MPEGFLOW_MULTIPART_PART_SIZE_BYTES":     "8388608",
		"MPEGFLOW_UPLOAD_TTL":                    "72h",
		"MPEGFLOW_STALE_UPLOAD_SWEEP_PERIOD":     "5m",
		"MPEGFLOW_RATE_LIMIT_ENABLED":            "false",
		"MPEGFLOW_RATE_LIMIT_KEY_RATE":           "600/m",
		"MPEGFLOW_RATE_LIMIT_KEY_BURST":          "30",
		"MPEGFLOW_RATE_LIMIT_ORG_RATE":           "1000/m",
		"MPEGFLOW_RATE_LIMIT_ORG_BURST":          "40",
		"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_RATE":  "100/h",
		"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_BURST": "5",
		"MPEGFLOW_TRUSTED_PROXIES":               "10.0.0.0/8, fd00::/8",
		"MPEGFLOW_PLATFORM_POLICY":               `{"plans": {"free": {}, "starter": {}, "pro": {"dedicated_pools": true, "max_pools": 1}, "enterprise": {"gpu": true}}}`,
	}))
	require.NoError(t, err)
	want := config.Config{
		DatabaseURL:    "postgres://db/mpegflow",
		RedisURL:       "redis://redis:6379/1",
		RedisKeyPrefix: "tenant-a",
		HTTPAddr:       "127.0.0.1:8081",
		MetricsAddr:    ":9191",
		GRPCAddr:       ":50052",
		ServerSecret:   "0123456789abcdef0123456789abcdef",
		PublicURL:      "https://video.example.com",
		Lease:          30 * time.Second, BackoffBase: time.Second, BackoffMax: time.Minute,
		StaleJobRecovery: 61 * time.Second, StaleWorkerSweep: 62 * time.Second, OfflineWorkerReap: 301 * time.Second,
		DelayedPromote: 6 * time.Second, QueueReconcile: 31 * time.Second, BatchPeriod: 3 * time.Second, BatchChunk: 2000,
		SchedulePeriod:     2 * time.Second,
		MultipartThreshold: 200 << 20, PartSize: 8 << 20, UploadTTL: 72 * time.Hour, StaleUploadSweep: 5 * time.Minute,
		WebhookPeriod: 7 * time.Second, WebhookTimeout: 3 * time.Second, WebhookRetryWindow: 48 * time.Hour, WebhookCircuitThreshold: 5,
		EgressAllow: "127.0.0.0/8,::1",
		S3: objstore.Config{
			Endpoint: "http://s3.local:7070", Region: "eu-west-3", Bucket: "media",
			AccessKeyID: "AKIA", SecretAccessKey: "secret", PathStyle: true, PresignTTL: 15 * time.Minute,
		},
		BodyLimit: 1024,
		AllowHTTP: true,
		LogLevel:  slog.LevelDebug,
		RateLimit: ratelimit.Config{
			Key:         ratelimit.Limit{Rate: ratelimit.Rate{Tokens: 600, Per: time.Minute}, Burst: 30},
			Org:         ratelimit.Limit{Rate: ratelimit.Rate{Tokens: 1000, Per: time.Minute}, Burst: 40},
			AuthFailure: ratelimit.Limit{Rate: ratelimit.Rate{Tokens: 100, Per: time.Hour}, Burst: 5},
		},
		TrustedProxies: "10.0.0.0/8, fd00::/8",
		PlatformPolicy: apiv1.PlatformPolicy{
			Plans: map[string]apiv1.PlanPolicy{
				"free":       {NodeSelectors: []string{}, Tolerations: []apiv1.Toleration{}},
				"starter":    {NodeSelectors: []string{}, Tolerations: []apiv1.Toleration{}},
				"pro":        {DedicatedPools: true, MaxPools: 1, NodeSelectors: []string{}, Tolerations: []apiv1.Toleration{}},
				"enterprise": {GPU: true, NodeSelectors: []string{}, Tolerations: []apiv1.Toleration{}},
			},
			Organizations: map[string]apiv1.PlanPolicy{},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}, got.Proxies())
}

// TestLoadKeyLimitFitsInsideOrganization: a key's rate and burst may not
// exceed its organization's; the error names both settings.
func TestLoadKeyLimitFitsInsideOrganization(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		vars map[string]string
		want string // substring of the error; empty = valid
	}{
		"key rate above":  {map[string]string{"MPEGFLOW_RATE_LIMIT_KEY_RATE": "51/s"}, "rate 51/s exceeds 50/s"},
		"key burst above": {map[string]string{"MPEGFLOW_RATE_LIMIT_ORG_BURST": "199"}, "burst 200 exceeds 199"},
		"equal, in other units": {map[string]string{
			"MPEGFLOW_RATE_LIMIT_KEY_RATE": "3000/m", "MPEGFLOW_RATE_LIMIT_ORG_RATE": "50/s", "MPEGFLOW_RATE_LIMIT_KEY_BURST": "500",
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.vars))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "MPEGFLOW_RATE_LIMIT_KEY_RATE and _BURST: a key's limit must fit inside MPEGFLOW_RATE_LIMIT_ORG_RATE and _BURST")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestVarsListsWhatLoadReads keeps the documented list (and the README table
// made from it) honest: Load reads exactly the variables in Vars.
func TestVarsListsWhatLoadReads(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		read []string
	)
	_, err := config.Load(func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		read = append(read, name)
		return ""
	})
	require.NoError(t, err)
	var documented []string
	for _, v := range config.Vars {
		documented = append(documented, v.Name)
	}
	slices.Sort(read)
	read = slices.Compact(read)
	slices.Sort(documented)
	assert.Equal(t, documented, read)
}

func TestLoadParseErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		name, value string
	}{
		"path style not a bool":   {"S3_FORCE_PATH_STYLE", "yes please"},
		"allow http not a bool":   {"MPEGFLOW_ALLOW_HTTP", "maybe"},
		"ttl not a duration":      {"S3_PRESIGN_TTL", "soon"},
		"ttl without unit":        {"S3_PRESIGN_TTL", "3600"},
		"ttl under a minute":      {"S3_PRESIGN_TTL", "59s"},
		"ttl over a week":         {"S3_PRESIGN_TTL", "169h"},
		"ttl negative":            {"S3_PRESIGN_TTL", "-1h"},
		"body limit not integer":  {"MPEGFLOW_BODY_LIMIT_BYTES", "1MB"},
		"body limit too small":    {"MPEGFLOW_BODY_LIMIT_BYTES", "1023"},
		"body limit negative":     {"MPEGFLOW_BODY_LIMIT_BYTES", "-5"},
		"log level unknown":       {"MPEGFLOW_LOG_LEVEL", "loud"},
		"egress allow not a cidr": {"MPEGFLOW_EGRESS_ALLOW", "127.0.0.0/8,localhost"},
		"circuit threshold zero":  {"MPEGFLOW_WEBHOOK_CIRCUIT_THRESHOLD", "0"},
		"webhook timeout":         {"MPEGFLOW_WEBHOOK_TIMEOUT", "ten seconds"},
		"batch chunk zero":        {"MPEGFLOW_BATCH_CHUNK", "0"},
		"batch chunk too big":     {"MPEGFLOW_BATCH_CHUNK", "50001"},
		"batch period zero":       {"MPEGFLOW_BATCH_PERIOD", "0s"},
		"schedule period zero":    {"MPEGFLOW_SCHEDULE_PERIOD", "0s"},
		"rate limit switch":       {"MPEGFLOW_RATE_LIMIT_ENABLED", "on"},
		"key rate no unit":        {"MPEGFLOW_RATE_LIMIT_KEY_RATE", "20"},
		"key rate per day":        {"MPEGFLOW_RATE_LIMIT_KEY_RATE", "20/d"},
		"org rate zero":           {"MPEGFLOW_RATE_LIMIT_ORG_RATE", "0/s"},
		"failure rate fraction":   {"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_RATE", "0.5/s"},
		"key burst zero":          {"MPEGFLOW_RATE_LIMIT_KEY_BURST", "0"},
		"org burst too big":       {"MPEGFLOW_RATE_LIMIT_ORG_BURST", "1000001"},
		"failure burst not int":   {"MPEGFLOW_RATE_LIMIT_AUTH_FAILURE_BURST", "lots"},
		"trusted proxy not cidr":  {"MPEGFLOW_TRUSTED_PROXIES", "10.0.0.0/8,ingress-nginx"},
		"threshold zero":          {"MPEGFLOW_MULTIPART_THRESHOLD_BYTES", "0"},
		"threshold above a PUT":   {"MPEGFLOW_MULTIPART_THRESHOLD_BYTES", "5368709121"},
		"part size below S3's":    {"MPEGFLOW_MULTIPART_PART_SIZE_BYTES", "5242879"},
		"part size not integer":   {"MPEGFLOW_MULTIPART_PART_SIZE_BYTES", "16MiB"},
		"upload ttl zero":         {"MPEGFLOW_UPLOAD_TTL", "0s"},
		"upload sweep period":     {"MPEGFLOW_STALE_UPLOAD_SWEEP_PERIOD", "often"},
		"public url relative":     {"MPEGFLOW_PUBLIC_URL", "video.example.com"},
		"public url ftp":          {"MPEGFLOW_PUBLIC_URL", "ftp://video.example.com"},
		"public url query":        {"MPEGFLOW_PUBLIC_URL", "https://video.example.com/?a=1"},
		"public url markup":       {"MPEGFLOW_PUBLIC_URL", `https://video.example.com/"><x`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(map[string]string{tc.name: tc.value}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.name+":")
			for _, v := range config.Vars {
				if v.Name != tc.name {
					assert.NotContains(t, err.Error(), v.Name, "only the bad variable is named")
				}
			}
		})
	}
}

func TestLoadBoundariesAccepted(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		vars  map[string]string
		check func(t *testing.T, c config.Config)
	}{
		"ttl one minute": {map[string]string{"S3_PRESIGN_TTL": "1m"}, func(t *testing.T, c config.Config) {
			assert.Equal(t, time.Minute, c.S3.PresignTTL)
		}},
		"ttl one week": {map[string]string{"S3_PRESIGN_TTL": "168h"}, func(t *testing.T, c config.Config) {
			assert.Equal(t, 7*24*time.Hour, c.S3.PresignTTL)
		}},
		"body limit 1024": {map[string]string{"MPEGFLOW_BODY_LIMIT_BYTES": "1024"}, func(t *testing.T, c config.Config) {
			assert.Equal(t, 1024, c.BodyLimit)
		}},
		"log level upper case": {map[string]string{"MPEGFLOW_LOG_LEVEL": "WARN"}, func(t *testing.T, c config.Config) {
			assert.Equal(t, slog.LevelWarn, c.LogLevel)
		}},
		"log level error": {map[string]string{"MPEGFLOW_LOG_LEVEL": "error"}, func(t *testing.T, c config.Config) {
			assert.Equal(t, slog.LevelError, c.LogLevel)
		}},
		"bools false": {map[string]string{"S3_FORCE_PATH_STYLE": "false", "MPEGFLOW_ALLOW_HTTP": "0"}, func(t *testing.T, c config.Config) {
			assert.False(t, c.S3.PathStyle)
			assert.False(t, c.AllowHTTP)
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(env(tc.vars))
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestLoadReportsEveryBadVariableAtOnce(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"S3_FORCE_PATH_STYLE":       "x",
		"MPEGFLOW_ALLOW_HTTP":       "x",
		"S3_PRESIGN_TTL":            "x",
		"MPEGFLOW_BODY_LIMIT_BYTES": "x",
		"MPEGFLOW_LOG_LEVEL":        "x",
	}
	_, err := config.Load(env(bad))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, len(bad), "one line per bad variable: %q", err)
	for name := range bad {
		assert.Contains(t, err.Error(), name+":")
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	full := config.Config{DatabaseURL: "postgres://db", RedisURL: "redis://r", S3: objstore.Config{Bucket: "b"}}
	tests := map[string]struct {
		cfg     config.Config
		names   []string
		missing string // the error's list; empty = no error
	}{
		"nothing required":          {cfg: config.Config{}},
		"all set":                   {cfg: full, names: []string{"DATABASE_URL", "REDIS_URL", "S3_BUCKET"}},
		"database missing":          {cfg: config.Config{RedisURL: "redis://r"}, names: []string{"DATABASE_URL"}, missing: "DATABASE_URL"},
		"redis missing":             {cfg: config.Config{DatabaseURL: "postgres://db"}, names: []string{"DATABASE_URL", "REDIS_URL"}, missing: "REDIS_URL"},
		"bucket missing":            {cfg: config.Config{DatabaseURL: "x", RedisURL: "y"}, names: []string{"DATABASE_URL", "REDIS_URL", "S3_BUCKET"}, missing: "S3_BUCKET"},
		"all missing, in ask order": {cfg: config.Config{}, names: []string{"S3_BUCKET", "DATABASE_URL", "REDIS_URL"}, missing: "S3_BUCKET, DATABASE_URL, REDIS_URL"},
		"unasked setting ignored":   {cfg: config.Config{DatabaseURL: "x"}, names: []string{"DATABASE_URL"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Require(tc.names...)
			if tc.missing == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, "set "+tc.missing+" in the environment")
		})
	}
}

// TestLoadConsoleUploads: the bucket's CORS rule names the origin browsers
// send for the public URL, and is never made for the development default.
func TestLoadConsoleUploads(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		vars map[string]string
		want []string
		err  string
	}{
		"off":                {vars: map[string]string{"MPEGFLOW_PUBLIC_URL": "https://video.example.com"}},
		"public url":         {vars: map[string]string{"MPEGFLOW_CONSOLE_UPLOADS": "true", "MPEGFLOW_PUBLIC_URL": "https://video.example.com/api"}, want: []string{"https://video.example.com"}},
		"as a browser sends": {vars: map[string]string{"MPEGFLOW_CONSOLE_UPLOADS": "true", "MPEGFLOW_PUBLIC_URL": "HTTPS://Video.Example.COM:443"}, want: []string{"https://video.example.com"}},
		"another port stays": {vars: map[string]string{"MPEGFLOW_CONSOLE_UPLOADS": "true", "MPEGFLOW_PUBLIC_URL": "http://video.example.com:8443"}, want: []string{"http://video.example.com:8443"}},
		"no public url":      {vars: map[string]string{"MPEGFLOW_CONSOLE_UPLOADS": "true"}, err: "MPEGFLOW_CONSOLE_UPLOADS: needs MPEGFLOW_PUBLIC_URL"},
		"switch not a bool":  {vars: map[string]string{"MPEGFLOW_CONSOLE_UPLOADS": "sure", "MPEGFLOW_PUBLIC_URL": "https://video.example.com"}, err: "MPEGFLOW_CONSOLE_UPLOADS"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(env(tc.vars))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.ConsoleUploadOrigins)
		})
	}
}
