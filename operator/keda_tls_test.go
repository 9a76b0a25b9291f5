package operator

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/config"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestKEDAPollsTLSOnlyRedis runs KEDA's real operator against TLS-only
// redis-servers set up as managed Redis services are: no plain port, a
// private CA, password-only AUTH (no ACL user), and in one case a required
// client certificate. The operator's Config and our own server's client
// are both built from one set of settings, as the chart builds them from
// its redis block: the server pushes ids through config.RedisOptions, KEDA
// reads the list through the rendered trigger and TriggerAuthentication,
// and N queued ids become N Jobs.
func TestKEDAPollsTLSOnlyRedis(t *testing.T) {
	t.Parallel()
	for name, mtls := range map[string]bool{"password only, private CA": false, "mutual TLS, password only": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const password = "managed-redis-pw"
			srv := testenv.StartTLSRedis(t, testenv.TLSRedisOptions{Password: password, ClientCerts: mtls})
			h := newHarness(t)
			ctx := context.Background()
			read := func(name string) string {
				b, err := os.ReadFile(filepath.Join(srv.CertDir, name))
				require.NoError(t, err)
				return string(b)
			}

			// What the chart derives from redis.tls and the URL Secret:
			// the server's environment...
			env := map[string]string{
				"REDIS_URL": "rediss://:" + password + "@" + srv.Addr + "/0", "REDIS_TLS": "true",
				"REDIS_TLS_CA_FILE": filepath.Join(srv.CertDir, "ca.crt"),
			}
			if mtls {
				env["REDIS_TLS_CERT_FILE"], env["REDIS_TLS_KEY_FILE"] = filepath.Join(srv.CertDir, "tls.crt"), filepath.Join(srv.CertDir, "tls.key")
			}
			server, err := config.Load(func(n string) string { return env[n] })
			require.NoError(t, err)
			opts, err := server.RedisOptions()
			require.NoError(t, err)
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { _ = rdb.Close() })
			require.NoError(t, rdb.Ping(ctx).Err(), "our own client reaches the TLS-only server")

			// ...and the operator's settings and Secrets.
			cfg := h.cfg
			cfg.RedisAddress, cfg.RedisDatabase, cfg.RedisKeyPrefix = srv.Addr, 0, "mpegflow"
			cfg.RedisTLS, cfg.RedisTLSSecret, cfg.RedisTLSClientCert, cfg.RedisPasswordOnly = true, "redis-tls", mtls, true
			tlsData := map[string]string{"ca.crt": read("ca.crt")}
			if mtls {
				tlsData["tls.crt"], tlsData["tls.key"] = read("tls.crt"), read("tls.key")
			}
			for name, data := range map[string]map[string]string{
				cfg.RedisAuthSecret: {"password": password}, // no username key: password-only
				"redis-tls":         tlsData,
			} {
				if name == "" {
					name = "mpegflow-keda-redis"
				}
				_, err := h.cs.CoreV1().Secrets(h.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			rec, err := NewReconciler(cfg, h.rec.pools, h.dyn, h.rec.log)
			require.NoError(t, err)
			h.cfg, h.rec = cfg, rec
			k := testenv.StartKEDA(t, testREST, testenv.KEDAOptions{Namespace: h.ns, WatchNamespace: h.ns})
			kh := &kedaHarness{harness: h, rdb: rdb, keys: queue.NewKeys("mpegflow"), keda: k}

			p := kh.kedaPool("KEDA TLS", 10)
			kh.reconcile()
			sj := kh.scaledJob(ScaledJobName(p.ID, apiv1.LaneLive))
			require.Equal(t, "true", sj.Spec.Triggers[0].Metadata["enableTLS"])
			start := time.Now()
			kh.push(p, 3)
			kh.waitJobs(p, 3)
			t.Logf("TLS push→Job latency: 3 Jobs %s after 3 ids were pushed", time.Since(start).Round(10*time.Millisecond))
			kh.holdJobs(p, 3, 2)
		})
	}
}
