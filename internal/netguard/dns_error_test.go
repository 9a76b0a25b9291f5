package netguard_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/netguard"
)

// clusterDNS is the resolver address the errors below carry, as Go's
// resolver reports it inside a pod.
const clusterDNS = "10.0.0.10:53"

// failingResolver answers every lookup with err.
type failingResolver struct {
	err   error
	calls atomic.Int32
}

func (r *failingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.calls.Add(1)
	return nil, r.err
}

// TestDNSErrorsAreClassifiedAndHideTheResolver: Go's *net.DNSError values of
// every kind, as the resolver returns them, go through the guard's client
// (webhooks, job inputs), CheckURL (creation) and DNSFailure. A name that
// does not exist is not found (not retryable, refused at creation);
// timeouts and temporary failures are retryable and not refusals; no
// message names the resolver.
func TestDNSErrorsAreClassifiedAndHideTheResolver(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err      *net.DNSError
		notFound bool
		timeout  bool
		words    string
		ctxErr   error
	}{
		"no such host": {err: &net.DNSError{Err: "no such host", Name: "gone.example", Server: clusterDNS, IsNotFound: true},
			notFound: true, words: "host gone.example not found"},
		"timeout": {err: &net.DNSError{Err: "i/o timeout", Name: "gone.example", Server: clusterDNS, IsTimeout: true},
			timeout: true, words: "lookup of host gone.example timed out"},
		"server misbehaving (SERVFAIL)": {err: &net.DNSError{Err: "server misbehaving", Name: "gone.example", Server: clusterDNS, IsTemporary: true},
			words: "lookup of host gone.example failed temporarily"},
		"not found but temporary": {err: &net.DNSError{Err: "no such host", Name: "gone.example", Server: clusterDNS, IsNotFound: true, IsTemporary: true},
			words: "failed temporarily"},
		"resolver unreachable": {err: &net.DNSError{Err: "dial udp " + clusterDNS + ": connect: network is unreachable", Name: "gone.example", Server: clusterDNS, IsTemporary: true},
			words: "failed temporarily"},
		"malformed answer": {err: &net.DNSError{Err: "cannot unmarshal DNS message from " + clusterDNS, Name: "gone.example", Server: clusterDNS},
			words: "lookup of host gone.example failed"},
		"cancelled": {err: &net.DNSError{Err: "operation was canceled", Name: "gone.example", Server: clusterDNS, UnwrapErr: context.Canceled},
			words: "was cancelled", ctxErr: context.Canceled},
		"deadline": {err: &net.DNSError{Err: "i/o timeout", Name: "gone.example", Server: clusterDNS, IsTimeout: true, UnwrapErr: context.DeadlineExceeded},
			timeout: true, words: "timed out", ctxErr: context.DeadlineExceeded},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := netguard.New(netguard.Config{Resolver: &failingResolver{err: tt.err}})
			check := func(what string, err error) {
				t.Helper()
				require.Error(t, err, what)
				assert.NotContains(t, err.Error(), "10.0.0.10", "%s names the resolver", what)
				assert.Contains(t, err.Error(), tt.words, what)
				de := netguard.DNSFailure(err)
				require.NotNil(t, de, what)
				assert.Equal(t, "gone.example", de.Host, what)
				assert.Equal(t, tt.notFound, de.NotFound(), what)
				assert.Equal(t, tt.notFound, errors.Is(err, netguard.ErrHostNotFound), what)
				var ne net.Error
				require.ErrorAs(t, err, &ne, what)
				assert.Equal(t, tt.timeout, ne.Timeout(), what)
				if tt.ctxErr != nil {
					assert.ErrorIs(t, err, tt.ctxErr, what)
				}
			}
			check("DNSFailure", netguard.DNSFailure(tt.err))

			err := getErr(g.Client(netguard.ClientConfig{}), "https://gone.example/hook")
			check("client", err)
			assert.NotErrorIs(t, err, netguard.ErrRefused, "a failed lookup is not a refusal")

			err = g.CheckURL(t.Context(), "https://gone.example/hook")
			if tt.notFound {
				require.ErrorIs(t, err, netguard.ErrRefused)
				assert.Contains(t, err.Error(), "host gone.example does not resolve")
				return
			}
			check("CheckURL", err)
			assert.NotErrorIs(t, err, netguard.ErrRefused, "a lookup that failed for now does not make the URL bad")
		})
	}
}

// TestDNSErrorsFromGoResolver: Go's own resolver asks a real DNS server (a
// UDP server in this test that answers NXDOMAIN, SERVFAIL or NOERROR with
// no addresses). The errors it makes name that server; what the guard's
// client returns does not, and is classified from the answer.
func TestDNSErrorsFromGoResolver(t *testing.T) {
	t.Parallel()
	server := startDNSServer(t)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
	g := netguard.New(netguard.Config{Resolver: resolver})
	tests := map[string]struct {
		host     string
		notFound bool
		words    string
	}{
		"NXDOMAIN":            {"gone.example.com", true, "host gone.example.com not found"},
		"SERVFAIL":            {"servfail.example.com", false, "lookup of host servfail.example.com failed temporarily"},
		"NOERROR, no address": {"empty.example.com", true, "host empty.example.com not found"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, raw := resolver.LookupNetIP(t.Context(), "ip", tt.host)
			var std *net.DNSError
			require.ErrorAs(t, raw, &std, "precondition: Go's resolver fails with a *net.DNSError")
			require.NotEmpty(t, std.Server, "precondition: Go's error names the server")
			require.Contains(t, raw.Error(), std.Server, "precondition: Go's text names the server")

			err := getErr(g.Client(netguard.ClientConfig{}), "https://"+tt.host+"/in.mp4")
			require.Error(t, err)
			assert.NotContains(t, err.Error(), std.Server)
			assert.NotContains(t, err.Error(), server)
			assert.Contains(t, err.Error(), tt.words)
			assert.Equal(t, tt.notFound, errors.Is(err, netguard.ErrHostNotFound))
			de := netguard.DNSFailure(raw)
			require.NotNil(t, de)
			assert.Equal(t, tt.notFound, de.NotFound())
			assert.NotContains(t, de.Error(), std.Server)
		})
	}
}

// TestInvalidNamesNeverAskDNS: names under .invalid (RFC 6761) are not found
// without a lookup. Where this machine's own resolver answers for such a
// name, its error names the resolver and DNSFailure's text does not.
func TestInvalidNamesNeverAskDNS(t *testing.T) {
	t.Parallel()
	r := &failingResolver{err: errors.New("the resolver was asked")}
	g := netguard.New(netguard.Config{AllowHTTP: true, Resolver: r})
	err := getErr(g.Client(netguard.ClientConfig{}), "http://example.invalid/in.mp4")
	require.ErrorIs(t, err, netguard.ErrHostNotFound)
	assert.Contains(t, err.Error(), "host example.invalid not found")
	err = g.CheckURL(t.Context(), "https://Hooks.Example.INVALID./x")
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Contains(t, err.Error(), "does not resolve")
	assert.Zero(t, r.calls.Load(), "no lookup for .invalid names")

	// The system resolver, really asked (the answer's kind depends on the
	// machine: NXDOMAIN here, no reachable server elsewhere).
	_, raw := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "mpegflow-test.invalid")
	var std *net.DNSError
	require.ErrorAs(t, raw, &std)
	de := netguard.DNSFailure(raw)
	require.NotNil(t, de)
	assert.Equal(t, "mpegflow-test.invalid", de.Host)
	assert.Equal(t, std.IsNotFound && !std.IsTimeout && !std.IsTemporary, de.NotFound())
	if std.Server != "" {
		assert.NotContains(t, de.Error(), std.Server)
	}
}

// startDNSServer serves DNS over UDP on 127.0.0.1: SERVFAIL for names
// starting "servfail.", NOERROR without answers for "empty.", NXDOMAIN for
// everything else. It returns the server's address.
func startDNSServer(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := dnsReply(buf[:n]); reply != nil {
				_, _ = conn.WriteTo(reply, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// dnsReply answers a one-question query (RFC 1035, section 4.1) with the
// question echoed and no records; the rcode comes from the name.
func dnsReply(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	end := i + 1 + 4 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	rcode := uint16(3) // NXDOMAIN
	switch name := strings.ToLower(strings.Join(labels, ".")); {
	case strings.HasPrefix(name, "servfail."):
		rcode = 2
	case strings.HasPrefix(name, "empty."):
		rcode = 0
	}
	reply := make([]byte, end)
	copy(reply, q[:end])
	flags := uint16(0x8000|0x0080) | binary.BigEndian.Uint16(q[2:4])&0x0100 | rcode // QR, RA, RD as asked
	binary.BigEndian.PutUint16(reply[2:4], flags)
	binary.BigEndian.PutUint16(reply[6:8], 0)   // ANCOUNT
	binary.BigEndian.PutUint16(reply[8:10], 0)  // NSCOUNT
	binary.BigEndian.PutUint16(reply[10:12], 0) // ARCOUNT
	return reply
}
