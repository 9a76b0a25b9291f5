package testenv

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TLSRedisOptions shape a TLSRedis server the way managed Redis services
// are set up.
type TLSRedisOptions struct {
	// Password, when set, is the default user's password (requirepass):
	// password-only AUTH, no ACL user.
	Password string
	// ClientCerts makes the server require a client certificate signed by
	// the test CA (tls-auth-clients yes); otherwise it asks for none.
	ClientCerts bool
	// Hosts are more names or IP addresses its certificate is valid for,
	// beyond localhost and 127.0.0.1: the address a relay gives it on
	// another network (the cluster tier's bridge).
	Hosts []string
}

// TLSRedis is a TLS-only redis-server of the test's own: no plain port,
// a CA and a server certificate made for it.
type TLSRedis struct {
	// Addr is the server's 127.0.0.1:port.
	Addr string
	// CertDir holds ca.crt (the CA that signed the server's certificate)
	// and tls.crt / tls.key, a certificate for localhost and 127.0.0.1
	// that is valid as a client certificate too.
	CertDir string
}

// StartTLSRedis starts a TLS-only redis-server (--port 0, --tls-port) on a
// free loopback port; it is killed when the test ends. A missing
// redis-server binary, or one built without TLS, fails the test.
func StartTLSRedis(t testing.TB, opts TLSRedisOptions) TLSRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): install it with scripts/deps.sh or your package manager (package redis-server)", err)
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := WriteSelfSignedCerts(certs, opts.Hosts...); err != nil {
		t.Fatalf("redis TLS certificates: %v", err)
	}
	listen := func(port int) []string {
		args := []string{"--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", filepath.Join(certs, "tls.crt"), "--tls-key-file", filepath.Join(certs, "tls.key"),
			"--tls-ca-cert-file", filepath.Join(certs, "ca.crt"), "--tls-auth-clients", "no"}
		if opts.ClientCerts {
			args[len(args)-1] = "yes"
		}
		if opts.Password != "" {
			args = append(args, "--requirepass", opts.Password)
		}
		return args
	}
	var lastErr error
	for attempt := range redisStartAttempts {
		addr, err := startRedisServer(t, bin, filepath.Join(dir, strconv.Itoa(attempt)), listen)
		if err == nil {
			return TLSRedis{Addr: addr, CertDir: certs}
		}
		lastErr = err
	}
	t.Fatalf("start a TLS redis-server (%d attempts): %v", redisStartAttempts, lastErr)
	return TLSRedis{}
}
