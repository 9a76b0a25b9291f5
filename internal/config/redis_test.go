package config_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

func loadRedis(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	return config.Load(func(name string) string { return env[name] })
}

// TestRedisTLSSettingsMustAgreeWithTheURL: the chart sets REDIS_TLS from
// redis.tls.enabled, the value KEDA's trigger gets, so a URL Secret that
// says otherwise fails at start instead of connecting differently.
func TestRedisTLSSettingsMustAgreeWithTheURL(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  map[string]string
		want string // "" = valid
	}{
		"tls url, no switch":           {env: map[string]string{"REDIS_URL": "rediss://:pw@redis:6380/0"}},
		"tls url, switch on, CA":       {env: map[string]string{"REDIS_URL": "rediss://:pw@redis:6380/0", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": "/ca.crt"}},
		"plain url, switch off":        {env: map[string]string{"REDIS_URL": "redis://redis:6379/0", "REDIS_TLS": "false"}},
		"switch on, plain url":         {env: map[string]string{"REDIS_URL": "redis://:secret@redis:6379/0", "REDIS_TLS": "true"}, want: "REDIS_TLS is true but REDIS_URL's scheme is redis://"},
		"switch off, tls url":          {env: map[string]string{"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS": "false"}, want: "REDIS_TLS is false but REDIS_URL's scheme is rediss://"},
		"CA with a plain url":          {env: map[string]string{"REDIS_URL": "redis://redis:6379/0", "REDIS_TLS_CA_FILE": "/ca.crt"}, want: "need a rediss:// REDIS_URL"},
		"client cert without its key":  {env: map[string]string{"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS_CERT_FILE": "/tls.crt"}, want: "set both"},
		"switch not a bool":            {env: map[string]string{"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS": "yes please"}, want: "REDIS_TLS: want true"},
		"no url yet: nothing to match": {env: map[string]string{"REDIS_TLS": "true"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := loadRedis(t, tt.env)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "secret", "the URL's password is never echoed")
		})
	}
}

// TestRedisURLMustBeWhereKEDAPolls: the chart gives the server the address
// and database KEDA polls; a REDIS_URL Secret naming another Redis would
// queue jobs no Job is ever started for, so it fails at start.
func TestRedisURLMustBeWhereKEDAPolls(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		url, addr, db string
		want          string // "" = valid
	}{
		"same":                       {url: "rediss://:secret@redis.example.com:6380/0", addr: "redis.example.com:6380"},
		"host case differs":          {url: "redis://Redis.Example.com:6379/2", addr: "redis.example.com:6379", db: "2"},
		"default port on both sides": {url: "redis://redis/0", addr: "redis:6379"},
		"ipv6":                       {url: "redis://[fd00::5]:6379/0", addr: "[fd00::5]:6379"},
		"no operator: not compared":  {url: "redis://elsewhere:6379/0"},
		"other host":                 {url: "redis://:secret@redis-a:6379/0", addr: "redis-b:6379", want: "REDIS_URL points at redis-a:6379 but KEDA polls MPEGFLOW_OPERATOR_REDIS_ADDRESS=redis-b:6379"},
		"other port":                 {url: "rediss://redis:6380/0", addr: "redis:6379", want: "KEDA polls"},
		"other database":             {url: "redis://redis:6379/3", addr: "redis:6379", want: "REDIS_URL uses database 3 but KEDA polls database 0"},
		"database not a number":      {url: "redis://redis:6379/0", addr: "redis:6379", db: "zero", want: "MPEGFLOW_OPERATOR_REDIS_DATABASE: want a database index"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"REDIS_URL": tt.url, "MPEGFLOW_OPERATOR_REDIS_ADDRESS": tt.addr, "MPEGFLOW_OPERATOR_REDIS_DATABASE": tt.db}
			_, err := loadRedis(t, env)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "secret", "the URL's password is never echoed")
		})
	}
}

// TestRedisOptionsReachTLSOnlyRedis connects our own client, as `serve`
// builds it from the environment, to real TLS-only redis-servers the way
// managed Redis services run: password-only AUTH with a private CA, and
// mutual TLS.
func TestRedisOptionsReachTLSOnlyRedis(t *testing.T) {
	t.Parallel()
	pw := testenv.StartTLSRedis(t, testenv.TLSRedisOptions{Password: "s3cret-pw"})
	mtls := testenv.StartTLSRedis(t, testenv.TLSRedisOptions{ClientCerts: true})
	other := testenv.StartTLSRedis(t, testenv.TLSRedisOptions{}) // a CA that did not sign pw's certificate

	tests := map[string]struct {
		env  map[string]string
		want string // "" = PING answers PONG; else the error contains it
	}{
		"password only, CA bundle": {env: map[string]string{
			"REDIS_URL": "rediss://:s3cret-pw@" + pw.Addr + "/0", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": filepath.Join(pw.CertDir, "ca.crt"),
		}},
		"password only, wrong password": {env: map[string]string{
			"REDIS_URL": "rediss://:wrong@" + pw.Addr + "/0", "REDIS_TLS_CA_FILE": filepath.Join(pw.CertDir, "ca.crt"),
		}, want: "WRONGPASS"},
		"password only, no password": {env: map[string]string{
			"REDIS_URL": "rediss://" + pw.Addr + "/0", "REDIS_TLS_CA_FILE": filepath.Join(pw.CertDir, "ca.crt"),
		}, want: "NOAUTH"},
		"a CA that did not sign the server's certificate": {env: map[string]string{
			"REDIS_URL": "rediss://:s3cret-pw@" + pw.Addr + "/0", "REDIS_TLS_CA_FILE": filepath.Join(other.CertDir, "ca.crt"),
		}, want: "certificate signed by unknown authority"},
		"system roots only": {env: map[string]string{
			"REDIS_URL": "rediss://:s3cret-pw@" + pw.Addr + "/0",
		}, want: "certificate signed by unknown authority"},
		"mutual TLS with the client certificate": {env: map[string]string{
			"REDIS_URL": "rediss://" + mtls.Addr + "/0", "REDIS_TLS_CA_FILE": filepath.Join(mtls.CertDir, "ca.crt"),
			"REDIS_TLS_CERT_FILE": filepath.Join(mtls.CertDir, "tls.crt"), "REDIS_TLS_KEY_FILE": filepath.Join(mtls.CertDir, "tls.key"),
		}},
		"mutual TLS without a client certificate": {env: map[string]string{
			"REDIS_URL": "rediss://" + mtls.Addr + "/0", "REDIS_TLS_CA_FILE": filepath.Join(mtls.CertDir, "ca.crt"),
		}, want: "certificate"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadRedis(t, tt.env)
			require.NoError(t, err)
			opts, err := cfg.RedisOptions()
			require.NoError(t, err)
			opts.MaxRetries = -1
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { _ = rdb.Close() })
			err = rdb.Ping(context.Background()).Err()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}

	cfg, err := loadRedis(t, map[string]string{"REDIS_URL": "rediss://" + pw.Addr, "REDIS_TLS_CA_FILE": filepath.Join(pw.CertDir, "tls.key")})
	require.NoError(t, err)
	_, err = cfg.RedisOptions()
	require.ErrorContains(t, err, "no PEM certificate", "a key file given as the CA bundle")
}
