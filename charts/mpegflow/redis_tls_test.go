package chart_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/operator"
)

// TestRedisTLSOneValuesBlock: redis.tls and redis.passwordOnly feed both
// the server (REDIS_TLS*, the CA and client certificate mounted from the
// Secret) and the operator's KEDA settings (enableTLS, the Secret its
// TriggerAuthentication references), and a URL Secret whose scheme
// disagrees with redis.tls.enabled, or names another Redis than
// redis.address / redis.database (where KEDA polls), stops the server at
// start.
func TestRedisTLSOneValuesBlock(t *testing.T) {
	t.Parallel()
	values := map[string]any{"redis": map[string]any{
		"address":      "redis.example:6380",
		"passwordOnly": true,
		"tls":          map[string]any{"enabled": true, "existingSecret": "redis-tls", "clientCert": true},
	}}
	r := mustRender(t, values)
	apiKey := apiServerKey(r)
	secrets := chartSecrets()
	secrets["mpegflow-redis/url"] = "rediss://:pw@redis.example:6380/0"

	server, err := config.Load(kubeletEnv(t, containerEnv(t, r, apiKey), secrets))
	require.NoError(t, err)
	require.Equal(t, config.RedisTLS{
		Required: ptrTo(true), CAFile: "/etc/mpegflow/redis-tls/ca.crt",
		CertFile: "/etc/mpegflow/redis-tls/tls.crt", KeyFile: "/etc/mpegflow/redis-tls/tls.key",
	}, server.RedisTLS)
	spec := get(r.objects[apiKey], "spec", "template", "spec").(obj)
	var mounted, volume bool
	for _, m := range list(containers(spec)[0], "volumeMounts") {
		mounted = mounted || (str(m, "name") == "redis-tls" && str(m, "mountPath") == "/etc/mpegflow/redis-tls")
	}
	for _, v := range list(spec, "volumes") {
		volume = volume || (str(v, "name") == "redis-tls" && str(v, "secret", "secretName") == "redis-tls")
	}
	require.True(t, mounted && volume, "the server mounts redis.tls.existingSecret where REDIS_TLS_* point")

	op, _, err := operator.FromEnv(kubeletEnv(t, containerEnv(t, r, operatorKey(r)), secrets))
	require.NoError(t, err)
	require.True(t, op.RedisTLS && op.RedisPasswordOnly && op.RedisTLSClientCert)
	require.Equal(t, "redis-tls", op.RedisTLSSecret)

	require.Equal(t, "redis.example:6380", op.RedisAddress)

	secrets["mpegflow-redis/url"] = "redis://:pw@redis.example:6380/0"
	_, err = config.Load(kubeletEnv(t, containerEnv(t, r, apiKey), secrets))
	require.ErrorContains(t, err, "REDIS_TLS is true but REDIS_URL's scheme is redis://")

	// A URL Secret naming another Redis, or another database, than the one
	// KEDA polls.
	secrets["mpegflow-redis/url"] = "rediss://:pw@redis-replica.example:6380/0"
	_, err = config.Load(kubeletEnv(t, containerEnv(t, r, apiKey), secrets))
	require.ErrorContains(t, err, "KEDA polls MPEGFLOW_OPERATOR_REDIS_ADDRESS=redis.example:6380")
	secrets["mpegflow-redis/url"] = "rediss://:pw@redis.example:6380/1"
	_, err = config.Load(kubeletEnv(t, containerEnv(t, r, apiKey), secrets))
	require.ErrorContains(t, err, "REDIS_URL uses database 1 but KEDA polls database 0")

	// Defaults: no TLS anywhere, and no mount.
	r = mustRender(t, nil)
	op, _, err = operator.FromEnv(kubeletEnv(t, containerEnv(t, r, operatorKey(r)), chartSecrets()))
	require.NoError(t, err)
	require.False(t, op.RedisTLS || op.RedisPasswordOnly)
	require.Equal(t, "false", str(containerEnv(t, r, apiServerKey(r))["REDIS_TLS"], "value"))

	_, err = render(t, map[string]any{"redis": map[string]any{"tls": map[string]any{"enabled": true, "clientCert": true}}})
	require.ErrorContains(t, err, "existingSecret", "a client certificate needs the Secret that holds it")
}

func ptrTo[T any](v T) *T { return &v }
