package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisTLS is how the server reaches a TLS Redis (managed Redis services
// are often TLS-only). The chart derives these variables and the
// operator's KEDA trigger settings from one values block, redis.tls, so
// the server and KEDA cannot disagree about TLS.
type RedisTLS struct {
	// Required is REDIS_TLS: nil follows REDIS_URL's scheme; set, the
	// scheme must agree (rediss:// for true), so that a URL Secret and
	// the chart's TLS switch that disagree fail at start.
	Required *bool
	// CAFile is a PEM bundle that verifies the server's certificate
	// (default: the system roots).
	CAFile string
	// CertFile and KeyFile are a client certificate (mutual TLS).
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate (tests only).
	InsecureSkipVerify bool
}

// loadRedisTLS reads the REDIS_TLS* variables and checks them against
// REDIS_URL's scheme.
func loadRedisTLS(get func(string) string, redisURL string) (RedisTLS, []error) {
	var errs []error
	t := RedisTLS{CAFile: get("REDIS_TLS_CA_FILE"), CertFile: get("REDIS_TLS_CERT_FILE"), KeyFile: get("REDIS_TLS_KEY_FILE")}
	if v := get("REDIS_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("REDIS_TLS: want true, false or empty: %w", err))
		}
		t.Required = &b
	}
	insecure, err := strconv.ParseBool(get("REDIS_TLS_INSECURE_SKIP_VERIFY"))
	if err != nil {
		errs = append(errs, fmt.Errorf("REDIS_TLS_INSECURE_SKIP_VERIFY: want true or false: %w", err))
	}
	t.InsecureSkipVerify = insecure
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: set both (a client certificate and its key) or neither"))
	}
	if redisURL == "" {
		return t, errs
	}
	u, err := url.Parse(redisURL)
	if err != nil {
		// Not echoed: the URL may carry a password.
		return t, append(errs, errors.New("REDIS_URL: not a URL"))
	}
	tlsURL := u.Scheme == "rediss"
	if t.Required != nil && *t.Required != tlsURL {
		errs = append(errs, fmt.Errorf("REDIS_TLS is %t but REDIS_URL's scheme is %s://: make them agree (the chart sets REDIS_TLS from redis.tls.enabled, as it sets KEDA's enableTLS)", *t.Required, u.Scheme))
	}
	if !tlsURL && (t.CAFile != "" || t.CertFile != "" || insecure) {
		errs = append(errs, fmt.Errorf("REDIS_TLS_* settings need a rediss:// REDIS_URL, not %s://", u.Scheme))
	}
	return t, errs
}

// checkKEDATarget compares REDIS_URL's host, port and database with the
// Redis KEDA polls (MPEGFLOW_OPERATOR_REDIS_ADDRESS and _DATABASE, which the
// chart sets on the server from redis.address and redis.database whenever
// it runs the operator). If they differ, jobs would be queued where KEDA
// never looks and wait forever with no error anywhere, so the server
// refuses to start. Unset (no operator, mpegflow dev): nothing to compare.
func checkKEDATarget(get func(string) string, redisURL string) []error {
	addr, dbVar := get("MPEGFLOW_OPERATOR_REDIS_ADDRESS"), get("MPEGFLOW_OPERATOR_REDIS_DATABASE")
	if addr == "" || redisURL == "" {
		return nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil // reported where REDIS_URL is parsed
	}
	var errs []error
	if !sameHostPort(opts.Addr, addr) {
		errs = append(errs, fmt.Errorf("REDIS_URL points at %s but KEDA polls MPEGFLOW_OPERATOR_REDIS_ADDRESS=%s: jobs would wait where KEDA never looks; make them the same Redis (the chart's redis.address and the URL in redis.existingSecret)", opts.Addr, addr))
	}
	db := 0
	if dbVar != "" {
		if db, err = strconv.Atoi(dbVar); err != nil {
			return append(errs, fmt.Errorf("MPEGFLOW_OPERATOR_REDIS_DATABASE: want a database index, got %q", dbVar))
		}
	}
	if opts.DB != db {
		errs = append(errs, fmt.Errorf("REDIS_URL uses database %d but KEDA polls database %d (MPEGFLOW_OPERATOR_REDIS_DATABASE): make them agree (the chart's redis.database)", opts.DB, db))
	}
	return errs
}

// sameHostPort compares two host:port addresses (host names case-blind;
// a missing port is Redis's 6379).
func sameHostPort(a, b string) bool {
	split := func(s string) (string, string) {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return strings.Trim(s, "[]"), "6379"
		}
		return h, p
	}
	ha, pa := split(a)
	hb, pb := split(b)
	return strings.EqualFold(ha, hb) && pa == pb
}

// RedisOptions are the go-redis options of REDIS_URL with the REDIS_TLS*
// settings applied: the CA bundle, the client certificate. A rediss:// URL
// with a password and no user name authenticates with the password only
// (AUTH password), as managed services without ACL users expect.
func (c Config) RedisOptions() (*redis.Options, error) {
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if opts.TLSConfig == nil {
		return opts, nil
	}
	t := c.RedisTLS
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REDIS_TLS_CA_FILE %s: no PEM certificate in it", t.CAFile)
		}
		opts.TLSConfig.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: %w", err)
		}
		opts.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	opts.TLSConfig.InsecureSkipVerify = t.InsecureSkipVerify //nolint:gosec // G402: off unless REDIS_TLS_INSECURE_SKIP_VERIFY, documented as for tests only
	return opts, nil
}
