package netguard_test

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/netguard/netguardtest"
)

// ssrfForms are the ways an SSRF payload spells an address the guard must
// refuse, plus a few URLs it must accept. They seed FuzzCheckURL, so plain
// `go test` checks every one.
var ssrfForms = []string{
	// Address literals, canonical.
	"http://127.0.0.1/", "http://10.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/",
	"http://100.100.100.200/latest/meta-data/", "http://0.0.0.0:8080/", "http://[::1]/", "http://[::]/",
	// IPv4 in the forms browsers and inet_aton read: decimal, octal, hex,
	// short, mixed, leading zeros, trailing dot.
	"http://2130706433/", "http://017700000001/", "http://0x7f000001/", "http://0177.0.0.1/",
	"http://0x7f.0x0.0x0.0x1/", "http://0x7f.1/", "http://127.1/", "http://127.0.1/", "http://0/",
	"http://127.000.000.001/", "http://127.0.0.1./", "http://0xA9FEA9FE/", "http://0251.0376.0251.0376/",
	"http://0X7F.0.0.1/", "http://0x/",
	// IPv6 forms that carry an IPv4 address, zones, metadata.
	"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/",
	"http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[::ffff:169.254.169.254]/",
	"http://[fe80::1%25eth0]/", "http://[fd00:ec2::254]/", "http://[0000::1]:80/",
	// Userinfo and delimiter tricks.
	"http://user:pass@127.0.0.1/", "http://public.example@127.0.0.1/", "http://127.0.0.1@public.example/",
	"http://127.0.0.1#@public.example/", "http://127.0.0.1:80\\@public.example/", "http://127.0.0.1%2f@public.example/",
	"http://%31%32%37.0.0.1/", "http://127.0.0.1%09/",
	// Localhost names, Unicode look-alikes.
	"http://localhost/", "http://LOCALHOST./", "http://api.localhost:8080/", "http://１２７.０.０.１/",
	"http://127。0。0。1/", "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
	// Names that resolve to refused addresses, and other schemes.
	"http://loop.test/", "http://meta.test/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
	"dict://127.0.0.1:11211/stats", "ftp://127.0.0.1/", "HTTP://127.0.0.1/", "//127.0.0.1/", "http:/127.0.0.1/",
	"http:127.0.0.1",
	// Accepted.
	"https://public.example/in.mp4", "http://93.184.215.14/", "https://[2606:4700::1111]/hook", "https://xn--mller-kva.example/",
}

// FuzzCheckURL: whatever the input, the guard does not panic, and a URL it
// accepts is http(s) without credentials, with an ASCII host that is not a
// localhost name and that no parser (netip, or the IPv4 forms of browsers
// and inet_aton) reads as a refused address. A URL CheckURL accepts passes
// CheckLiteral too. Names resolve to a public address (except the *.test
// names below), so only the literal checks stand between a crafted host and
// acceptance.
//
//	go test -run '^$' -fuzz FuzzCheckURL -fuzztime 30s ./internal/netguard/
func FuzzCheckURL(f *testing.F) {
	for _, s := range ssrfForms {
		f.Add(s)
	}
	r := netguardtest.NewPublic().Set("loop.test", "127.0.0.1").Set("meta.test", "169.254.169.254")
	g := netguard.New(netguard.Config{AllowHTTP: true, Resolver: r})
	f.Fuzz(func(t *testing.T, raw string) {
		err := g.CheckURL(t.Context(), raw)
		literal := g.CheckLiteral(raw)
		if err != nil {
			if !errors.Is(err, netguard.ErrRefused) {
				t.Fatalf("CheckURL(%q): an error that is not a refusal: %v", raw, err)
			}
			return
		}
		if literal != nil {
			t.Fatalf("CheckURL(%q) accepted what CheckLiteral refuses: %v", raw, literal)
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, perr)
		}
		host := u.Hostname()
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		case u.User != nil:
			t.Fatalf("accepted %q with credentials", raw)
		case host == "":
			t.Fatalf("accepted %q without a host", raw)
		case !isASCII(host):
			t.Fatalf("accepted %q with a non-ASCII host %q (the HTTP client maps it, e.g. fullwidth digits to an address)", raw, host)
		case isLocalhostName(host):
			t.Fatalf("accepted %q, a localhost name", raw)
		}
		if a, ok := addressIn(host); ok {
			if why := netguard.Classify(a); why != "" {
				t.Fatalf("accepted %q, whose host %q reads as %s, %s", raw, host, a, why)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isLocalhostName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// addressIn reads host as an IP address the way some parser would: netip,
// or the IPv4 forms of inet_aton and browsers (1 to 4 parts, each decimal,
// octal with a leading 0, or hex with 0x; the last part fills the remaining
// bytes; one trailing dot allowed).
func addressIn(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		var n uint64
		var err error
		switch lp := strings.ToLower(p); {
		case strings.HasPrefix(lp, "0x"):
			if lp == "0x" {
				break // WHATWG: 0x alone is zero
			}
			n, err = strconv.ParseUint(lp[2:], 16, 64)
		case len(p) > 1 && p[0] == '0':
			n, err = strconv.ParseUint(p[1:], 8, 64)
		default:
			n, err = strconv.ParseUint(p, 10, 64)
		}
		if err != nil || strings.ContainsAny(p, "+-_") {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
