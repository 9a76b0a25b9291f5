// Package netguardtest gives tests a resolver that answers without DNS, so
// a host name can be public at one moment and 127.0.0.1 the next.
package netguardtest

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/mpegflow/mpegflow/internal/netguard"
)

// PublicAddr is what unknown names resolve to by default: a public address
// that tests never connect to (the guard only classifies it).
var PublicAddr = netip.MustParseAddr("93.184.215.14")

// Resolver answers from a table; names not in it resolve to Default (none:
// "no such host", as Go's resolver reports it).
type Resolver struct {
	mu      sync.Mutex
	names   map[string][]netip.Addr
	Default []netip.Addr
}

var _ netguard.Resolver = (*Resolver)(nil)

// NewPublic returns a resolver that answers PublicAddr for every name not set.
func NewPublic() *Resolver {
	return &Resolver{names: map[string][]netip.Addr{}, Default: []netip.Addr{PublicAddr}}
}

// Set makes host resolve to addrs from now on.
func (r *Resolver) Set(host string, addrs ...string) *Resolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string][]netip.Addr{}
	}
	as := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		as[i] = netip.MustParseAddr(a)
	}
	r.names[host] = as
	return r
}

// LookupNetIP implements netguard.Resolver.
func (r *Resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if as, ok := r.names[host]; ok {
		return as, nil
	}
	if len(r.Default) > 0 {
		return r.Default, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// LoopbackAllowed is the test and development allowlist: the loopback
// ranges, where the test services and receivers listen.
func LoopbackAllowed() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}
