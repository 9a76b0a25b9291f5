package netguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/netguard"
)

// fakeResolver answers from a map; a name can change its answer between
// calls (DNS rebinding).
type fakeResolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	r.names[host] = as
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if as, ok := r.names[host]; ok {
		return as, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

func newResolver() *fakeResolver { return &fakeResolver{names: map[string][]netip.Addr{}} }

// getErr performs a GET the test expects to fail and returns its error. A
// response that came back anyway is closed; the caller's assertions on the
// error then fail.
func getErr(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		addr string
		want string // "" = public
	}{
		"public v4":              {"93.184.215.14", ""},
		"public v6":              {"2606:4700::1111", ""},
		"loopback":               {"127.0.0.1", "a loopback address"},
		"loopback elsewhere":     {"127.8.9.10", "a loopback address"},
		"private 10":             {"10.1.2.3", "a private address"},
		"private 172.16":         {"172.31.255.1", "a private address"},
		"172.32 is public":       {"172.32.0.1", ""},
		"private 192.168":        {"192.168.1.1", "a private address"},
		"link-local":             {"169.254.1.1", "a link-local address"},
		"cloud metadata":         {"169.254.169.254", "the cloud metadata address"},
		"carrier-grade NAT":      {"100.64.0.1", "a carrier-grade NAT address"},
		"alibaba metadata (CGN)": {"100.100.100.200", "a carrier-grade NAT address"},
		"this network":           {"0.0.0.0", `a "this network" address`},
		"multicast v4":           {"239.1.1.1", "a multicast address"},
		"broadcast":              {"255.255.255.255", "a reserved address"},
		"v6 loopback":            {"::1", "a loopback address"},
		"v6 unspecified":         {"::", "the unspecified address"},
		"v4-mapped loopback":     {"::ffff:127.0.0.1", "a loopback address"},
		"v4-mapped private":      {"::ffff:10.0.0.1", "a private address"},
		"v6 unique-local":        {"fd12:3456::1", "a unique-local (private) address"},
		"v6 aws metadata":        {"fd00:ec2::254", "the cloud metadata address"},
		"v6 link-local":          {"fe80::1", "a link-local address"},
		"v6 multicast":           {"ff02::1", "a multicast address"},
		"NAT64 of loopback":      {"64:ff9b::7f00:1", "a loopback address (through NAT64)"},
		"NAT64 of public":        {"64:ff9b::5db8:d70e", ""},
		"6to4":                   {"2002:7f00:1::1", "a 6to4 address"},
		"teredo":                 {"2001:0:4136:e378::1", "an IETF protocol assignment (Teredo, ORCHID, …)"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, netguard.Classify(netip.MustParseAddr(tt.addr)))
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	r := newResolver()
	r.set("public.test", "93.184.215.14")
	r.set("loop.test", "127.0.0.1")
	r.set("mixed.test", "93.184.215.14", "10.0.0.7")
	r.set("meta.test", "169.254.169.254")
	tests := map[string]struct {
		cfg  netguard.Config
		url  string
		want string // "" = accepted; else a substring of the refusal
	}{
		"public https":                  {netguard.Config{}, "https://public.test/hook", ""},
		"plain http refused":            {netguard.Config{}, "http://public.test/hook", "plain http is not accepted"},
		"plain http when allowed":       {netguard.Config{AllowHTTP: true}, "http://public.test/hook", ""},
		"ftp":                           {netguard.Config{AllowHTTP: true}, "ftp://public.test/x", `scheme "ftp"`},
		"credentials":                   {netguard.Config{}, "https://u:p@public.test/", "credentials"},
		"name resolving to loopback":    {netguard.Config{}, "https://loop.test/", "host loop.test resolves to 127.0.0.1, which is a loopback address"},
		"one private address is enough": {netguard.Config{}, "https://mixed.test/", "10.0.0.7, which is a private address"},
		"metadata by name":              {netguard.Config{}, "https://meta.test/latest", "the cloud metadata address"},
		"metadata literal":              {netguard.Config{}, "https://169.254.169.254/latest/meta-data/", "the cloud metadata address"},
		"v6 literal loopback":           {netguard.Config{}, "https://[::1]:8443/", "::1 is a loopback address"},
		"localhost never asks DNS":      {netguard.Config{}, "https://localhost:8443/", "loopback"},
		"sub.localhost":                 {netguard.Config{}, "https://api.localhost/", "loopback"},
		"unresolvable":                  {netguard.Config{}, "https://nowhere.test/", "does not resolve"},
		"allowlisted loopback":          {netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "https://loop.test/", ""},
		"allowlist is exact":            {netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "https://mixed.test/", "10.0.0.7"},
		"decimal ip is not a hostname":  {netguard.Config{}, "https://2130706433/", "decimal, octal, hex and shortened address forms are not accepted"},
		"shortened ip":                  {netguard.Config{}, "https://127.1/", "neither a dotted-decimal IPv4 address nor a host name"},
		"fullwidth digits":              {netguard.Config{}, "https://１２７.０.０.１/", "not ASCII"},
		"punycode is a name":            {netguard.Config{}, "https://xn--mller-kva.test/", "does not resolve"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Resolver = r
			err := netguard.New(cfg).CheckURL(t.Context(), tt.url)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, netguard.ErrRefused)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseAllow(t *testing.T) {
	t.Parallel()
	got, err := netguard.ParseAllow(" 127.0.0.0/8, ::1 ,10.1.2.3/8,")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.0/8,::1/128,10.0.0.0/8", netguard.FormatAllow(got))
	for _, bad := range []string{"127.0.0.0/33", "localhost", "10.0.0.0/8,nope"} {
		_, err := netguard.ParseAllow(bad)
		assert.Error(t, err, bad)
	}
}

// TestClientChecksAtConnectTime: a receiver really listens on 127.0.0.1.
// The name passed the check at creation (it resolved to a public address),
// then resolves to 127.0.0.1 (DNS rebinding): the dial is refused and the
// receiver never sees a request. With the loopback allowlisted it works.
func TestClientChecksAtConnectTime(t *testing.T) {
	t.Parallel()
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	r := newResolver()
	r.set("rebind.test", "93.184.215.14")
	g := netguard.New(netguard.Config{AllowHTTP: true, Resolver: r})
	target := "http://rebind.test:" + port + "/hook"
	require.NoError(t, g.CheckURL(t.Context(), target), "at creation the name is public")

	r.set("rebind.test", "127.0.0.1")
	err := getErr(g.Client(netguard.ClientConfig{}), target)
	require.Error(t, err)
	assert.ErrorIs(t, err, netguard.ErrRefused)
	assert.Contains(t, err.Error(), "127.0.0.1 is a loopback address")

	// The system resolver: localhost really resolves to loopback.
	err = getErr(netguard.New(netguard.Config{AllowHTTP: true}).Client(netguard.ClientConfig{}), "http://localhost:"+port+"/")
	require.ErrorIs(t, err, netguard.ErrRefused, "localhost resolves to loopback at dial time")
	mu.Lock()
	assert.Zero(t, hits, "no refused request reached the receiver")
	mu.Unlock()

	allowed := netguard.New(netguard.Config{AllowHTTP: true, Resolver: r, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	resp, err := allowed.Client(netguard.ClientConfig{}).Get(target)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestClientRechecksRedirects: an allowed server redirects to a refused
// scheme, and to an address outside the allowlist; both hops are refused.
// With redirects off the 3xx comes back as it is.
func TestClientRechecksRedirects(t *testing.T) {
	t.Parallel()
	var target string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, "http://"+r.Host+"/end", http.StatusFound)
		case "/to-private":
			http.Redirect(w, r, target, http.StatusFound)
		default:
			fmt.Fprint(w, "end")
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	// 127.0.0.2 is also loopback but outside the allowlist: a private hop.
	target = "http://127.0.0.2:" + port + "/end"
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

	g := netguard.New(netguard.Config{AllowHTTP: true, Allow: allow})
	resp, err := g.Client(netguard.ClientConfig{MaxRedirects: 5}).Get(srv.URL + "/to-http")
	require.NoError(t, err, "http to http is fine when http is allowed")
	resp.Body.Close()

	err = getErr(g.Client(netguard.ClientConfig{MaxRedirects: 5}), srv.URL+"/to-private")
	require.Error(t, err)
	assert.ErrorIs(t, err, netguard.ErrRefused)
	assert.Contains(t, err.Error(), "127.0.0.2 is a loopback address")

	resp, err = g.Client(netguard.ClientConfig{}).Get(srv.URL + "/to-private")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode, "no redirects: the 3xx is the answer")

	// A redirect's scheme is checked like the first URL's (an https
	// receiver redirecting to plain http is refused in production).
	err = netguard.New(netguard.Config{Allow: allow}).CheckScheme(&url.URL{Scheme: "http", Host: "x.test"})
	assert.True(t, errors.Is(err, netguard.ErrRefused))
}
