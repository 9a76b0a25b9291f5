package operator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/stretchr/testify/require"
)

// TestRenderRedisAuthAndTLS holds the redis trigger's TLS metadata and the
// TriggerAuthentication's Secret references to what KEDA v2.21's redis
// scaler reads (enableTLS and unsafeSsl from metadata; username, password,
// ca, cert and key from auth params), for each way a Redis may be run.
func TestRenderRedisAuthAndTLS(t *testing.T) {
	t.Parallel()
	ref := func(param, secret, key string) kedav1alpha1.AuthSecretTargetRef {
		return kedav1alpha1.AuthSecretTargetRef{Parameter: param, Name: secret, Key: key}
	}
	user, pass := ref("username", "mpegflow-keda-redis", "username"), ref("password", "mpegflow-keda-redis", "password")
	tests := map[string]struct {
		cfg      func(*Config)
		wantMeta map[string]string // TLS keys of the trigger metadata
		wantRefs []kedav1alpha1.AuthSecretTargetRef
	}{
		"ACL user, no TLS (default)": {wantRefs: []kedav1alpha1.AuthSecretTargetRef{user, pass}},
		"password only": {
			cfg:      func(c *Config) { c.RedisPasswordOnly = true },
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{pass},
		},
		"TLS with KEDA's system roots": {
			cfg:      func(c *Config) { c.RedisTLS = true },
			wantMeta: map[string]string{"enableTLS": "true"},
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{user, pass},
		},
		"TLS with a private CA, password only (managed Redis)": {
			cfg: func(c *Config) {
				c.RedisTLS, c.RedisTLSSecret, c.RedisPasswordOnly = true, "redis-tls", true
			},
			wantMeta: map[string]string{"enableTLS": "true"},
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{pass, ref("ca", "redis-tls", "ca.crt")},
		},
		"mutual TLS": {
			cfg: func(c *Config) {
				c.RedisTLS, c.RedisTLSSecret, c.RedisTLSClientCert = true, "redis-tls", true
			},
			wantMeta: map[string]string{"enableTLS": "true"},
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{user, pass, ref("ca", "redis-tls", "ca.crt"), ref("cert", "redis-tls", "tls.crt"), ref("key", "redis-tls", "tls.key")},
		},
		"unsafeSsl": {
			cfg:      func(c *Config) { c.RedisTLS, c.RedisTLSInsecureSkipVerify = true, true },
			wantMeta: map[string]string{"enableTLS": "true", "unsafeSsl": "true"},
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{user, pass},
		},
		"TLS settings without TLS are ignored": {
			cfg: func(c *Config) {
				c.RedisTLSSecret, c.RedisTLSClientCert, c.RedisTLSInsecureSkipVerify = "redis-tls", true, true
			},
			wantRefs: []kedav1alpha1.AuthSecretTargetRef{user, pass},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			got, err := Render(cfg, testPool("acme"))
			require.NoError(t, err)
			if diff := cmp.Diff(tt.wantRefs, got.TriggerAuthentication.Spec.SecretTargetRef); diff != "" {
				t.Errorf("TriggerAuthentication refs (-want +got):\n%s", diff)
			}
			for _, sj := range got.ScaledJobs {
				meta := sj.Spec.Triggers[0].Metadata
				gotTLS := map[string]string{}
				for _, k := range []string{"enableTLS", "unsafeSsl", "tls", "password", "username", "ca", "cert", "key"} {
					if v, ok := meta[k]; ok {
						gotTLS[k] = v
					}
				}
				want := tt.wantMeta
				if want == nil {
					want = map[string]string{}
				}
				if diff := cmp.Diff(want, gotTLS); diff != "" {
					t.Errorf("%s: redis trigger TLS metadata (-want +got):\n%s", sj.Name, diff)
				}
			}
		})
	}
	cfg := testConfig()
	cfg.RedisTLS, cfg.RedisTLSClientCert = true, true
	require.ErrorContains(t, cfg.Validate(), "RedisTLSClientCert needs RedisTLSSecret")
}
