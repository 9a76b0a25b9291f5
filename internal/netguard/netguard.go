// Package netguard keeps MpegFlow from being used to reach addresses it must
// not reach (server-side request forgery): webhook URLs and job input URLs
// are the customer's, and the servers that fetch them sit next to Postgres,
// Redis, the cluster's API and the cloud's metadata service.
//
// A Guard checks a URL twice. When it is accepted (webhook creation, job
// submission) CheckURL resolves the host and refuses it unless every address
// is public. When it is fetched, the Guard's dialer checks the address the
// socket is about to connect to (net.Dialer.Control), so a name that resolved
// to a public address at creation and to 127.0.0.1 later (DNS rebinding) is
// still refused, and so is every redirect hop.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"unicode/utf8"
)

// ErrRefused matches every refusal (errors.Is).
var ErrRefused = errors.New("refused by the SSRF guard")

// RefusedError says why a URL or an address was refused.
type RefusedError struct {
	// Reason is shown to the customer, e.g. "127.0.0.1 is a loopback address".
	Reason string
}

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// Resolver looks host names up; *net.Resolver implements it, tests pass
// their own so a name can resolve to 127.0.0.1 without touching DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Config says what the guard lets through beyond public https.
type Config struct {
	// AllowHTTP accepts plain http:// URLs (development only).
	AllowHTTP bool
	// Allow lists address ranges that are accepted although they are not
	// public: 127.0.0.0/8 for tests and `mpegflow dev`, an in-house media
	// server's range in a private deployment. Empty in production.
	Allow []netip.Prefix
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver Resolver
}

// Guard checks URLs and addresses against its Config. It is safe for
// concurrent use.
type Guard struct {
	cfg Config
}

// New returns a Guard.
func New(cfg Config) *Guard {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return &Guard{cfg: cfg}
}

// ParseAllow parses a comma-separated list of CIDRs or single addresses
// (MPEGFLOW_EGRESS_ALLOW), e.g. "127.0.0.0/8,::1".
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("allowlist entry %q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("allowlist entry %q: want a CIDR such as 127.0.0.0/8 or an address: %w", f, err)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// FormatAllow is the inverse of ParseAllow, for handing the list to a pod.
func FormatAllow(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// AllowHTTP reports whether plain http:// is accepted.
func (g *Guard) AllowHTTP() bool { return g.cfg.AllowHTTP }

// Allowlist returns the configured allowlist.
func (g *Guard) Allowlist() []netip.Prefix { return g.cfg.Allow }

// CheckScheme refuses anything but https (and http when allowed), URLs with
// credentials and URLs without a host. It does no I/O.
func (g *Guard) CheckScheme(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.cfg.AllowHTTP:
	case u.Scheme == "http":
		return refused("plain http is not accepted; use https (http is allowed only in development)")
	default:
		return refused("scheme %q is not accepted; use https", u.Scheme)
	}
	if u.User != nil {
		return refused("URLs must not carry credentials")
	}
	if u.Hostname() == "" {
		return refused("the URL has no host")
	}
	return nil
}

// CheckURL checks a URL where it is accepted: its scheme, then every address
// its host resolves to. A host that does not exist is refused too; a lookup
// that timed out or failed temporarily returns its *DNSError (not a
// refusal: the URL may be fine).
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	host, resolve, err := g.checkWithoutDNS(raw)
	if err != nil || !resolve {
		return err
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		if de := DNSFailure(err); de != nil && !de.NotFound() {
			return de // not known to be bad: the lookup failed for now
		}
		return refused("host %s does not resolve", host)
	}
	for _, a := range addrs {
		if g.CheckAddr(a) != nil {
			return refused("host %s resolves to %s, which is %s", host, a.Unmap(), Classify(a))
		}
	}
	return nil
}

// CheckLiteral checks what a URL shows by itself, without a DNS lookup: its
// scheme, and its host when that is an address (in any form a client might
// read as one) or a localhost name; non-ASCII hosts are refused. It is
// the check for inputs accepted in bulk (a batch's manifest); names are
// checked when the encoder connects.
func (g *Guard) CheckLiteral(raw string) error {
	_, _, err := g.checkWithoutDNS(raw)
	return err
}

// checkWithoutDNS checks raw's scheme and a host that needs no lookup, and
// returns the host when it still has to be resolved.
func (g *Guard) checkWithoutDNS(raw string) (host string, resolve bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, refused("the URL does not parse")
	}
	if err := g.CheckScheme(u); err != nil {
		return "", false, err
	}
	host = u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return "", false, g.CheckAddr(a)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// The HTTP client maps such names (UTS 46) before dialing:
		// fullwidth digits become an address no check here would see.
		return "", false, refused("host %q is not ASCII; write an internationalised name in its ASCII (xn--) form", host)
	}
	if endsInNumber(host) {
		return "", false, refused("host %s is neither a dotted-decimal IPv4 address nor a host name; "+
			"decimal, octal, hex and shortened address forms are not accepted", host)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") {
		// RFC 6761: localhost names are loopback whatever DNS says.
		return "", false, g.CheckAddr(netip.IPv6Loopback())
	}
	return host, true, nil
}

// lookup resolves host with the configured resolver. Failures come back as
// a *DNSError where the resolver is Go's, so their text never names the
// resolver. Names under "invalid." never resolve (RFC 6761, section 6.4)
// and are answered without asking DNS.
func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "invalid" || strings.HasSuffix(name, ".invalid") {
		return nil, notFound(host)
	}
	addrs, err := g.cfg.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, lookupFailed(host, err)
	}
	if len(addrs) == 0 {
		return nil, notFound(host)
	}
	return addrs, nil
}

// endsInNumber reports whether host's last label is a number (digits, or
// 0x and hex digits), the WHATWG URL standard's test for a host that is an
// IPv4 address. Browsers and inet_aton read such hosts as addresses in
// forms netip does not (2130706433, 0x7f.1, 0177.0.0.1, 127.1, 127.0.0.1.),
// where a resolver would be asked for the name instead, so what the check
// saw and what a client connects to could differ. No domain name ends in a
// numeric label.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if len(labels) > 1 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	return len(last) >= 2 && strings.EqualFold(last[:2], "0x") && strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
}

// CheckAddr refuses an address that is not public, unless the allowlist
// holds it.
func (g *Guard) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range g.cfg.Allow {
		if p.Contains(a) {
			return nil
		}
	}
	if why := Classify(a); why != "" {
		return refused("%s is %s", a, why)
	}
	return nil
}

// Control is a net.Dialer.Control function: it runs after the address was
// resolved and before the socket connects, so it sees the very address the
// connection goes to.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return refused("network %s is not accepted", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused("address %q does not parse", address)
	}
	return g.CheckAddr(ap.Addr())
}

// Dialer returns a net.Dialer whose every connection passes Control.
func (g *Guard) Dialer(base net.Dialer) *net.Dialer {
	d := base
	d.Control = g.Control
	d.ControlContext = nil
	return &d
}
