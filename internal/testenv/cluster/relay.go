//go:build cluster

package cluster

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Expose makes a host service that listens on loopback only (Postgres,
// Redis and S3 of scripts/with-services.sh) reachable from pods: it listens
// on a free port of the host's address on the pod network and relays every
// connection to target (host:port), until the test ends. Pods see the
// returned address, as they would a managed service's; the service sees
// connections from 127.0.0.1.
func (c *Cluster) Expose(t testing.TB, target string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(c.HostAddress().String(), "0"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		for _, c := range cs {
			conns[c] = struct{}{}
		}
		return true
	}
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Logf("expose %s: accept: %v", target, err)
				}
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				t.Logf("expose %s: %v", target, err)
				_ = in.Close()
				continue
			}
			if !track(in, out) {
				_, _ = in.Close(), out.Close()
				return
			}
			wg.Add(2)
			relay := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			go relay(out, in)
			go relay(in, out)
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}
