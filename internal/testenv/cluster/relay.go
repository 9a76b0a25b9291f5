//go:build cluster

package cluster

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// relay accepts on l and relays every connection to target until the
// test ends, and returns l's address.
func relay(t testing.TB, l net.Listener, target string) netip.AddrPort {
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
