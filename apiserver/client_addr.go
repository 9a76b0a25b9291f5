package apiserver

import (
	"bytes"
	"net/netip"
	"slices"

	"github.com/gofiber/fiber/v2"
)

// clientAddr is the address a request came from, for the per-address
// limit on failed authentications.
func (s *Server) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return clientAddr(peer, c.Request().Header.PeekAll(fiber.HeaderXForwardedFor), s.cfg.TrustedProxies)
}

// clientAddr finds the client behind trusted proxies. The TCP peer is the
// client unless it is a trusted proxy. Then X-Forwarded-For is read from
// the right, where each proxy appended the address it received the request
// from, skipping trusted proxies: the first address that is not one is the
// client. Whatever lies further left was written by the client itself and
// is never believed, so a client cannot choose the address it is limited
// by. An entry that is not an address ends the walk at the last trusted
// hop; a chain of trusted hops only ends at its leftmost address.
func clientAddr(peer netip.Addr, forwardedFor [][]byte, trusted []netip.Prefix) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	addr := peer.WithZone("").Unmap()
	if !isTrusted(addr) {
		return addr
	}
	var hops [][]byte
	for _, h := range forwardedFor { // several header lines form one list, in order
		hops = append(hops, bytes.Split(h, []byte(","))...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(bytes.TrimSpace(hops[i]))
		if !ok {
			return addr
		}
		addr = hop
		if !isTrusted(addr) {
			return addr
		}
	}
	return addr
}

// parseHop reads one X-Forwarded-For entry: an address, or an address with
// a port as some proxies write it.
func parseHop(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(string(b)); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(b)); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}
