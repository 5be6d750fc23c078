package limits

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Key identifies a client for the per-address limits: an IPv4 address as a
// /32, an IPv6 address as its /64. One IPv6 host usually owns a whole /64, so
// counting single IPv6 addresses would let it open 2^64 "different" clients.
type Key = netip.Prefix

// KeyOf returns the Key of a client address. An IPv4-mapped IPv6 address
// counts as the IPv4 address it maps.
func KeyOf(a netip.Addr) Key {
	a = a.Unmap()
	bits := 32
	if a.Is6() && !a.IsLoopback() {
		// ::1 keeps all its bits: its /64 would be ::/64, which is not
		// recognisably loopback any more.
		bits = 64
	} else if a.Is6() {
		bits = 128
	}
	p, err := a.Prefix(bits)
	if err != nil {
		// Only the zero Addr fails; give it a zero Key, which no real
		// address shares.
		return Key{}
	}
	return p
}

// isLoopback reports whether k covers a loopback address (127.0.0.0/8 or ::1).
func isLoopback(k Key) bool {
	return k.IsValid() && k.Addr().IsLoopback()
}

// ParseTrustedProxies parses --trusted-proxy values: CIDR prefixes or single
// addresses of reverse proxies whose X-Forwarded-For header is believed.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", v, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", v, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientAddr returns the address of the client that sent r. It is the peer
// address of the TCP connection (r.RemoteAddr), unless that peer is one of the
// trusted proxies: then X-Forwarded-For is read from right to left and the
// first address that is not a trusted proxy is the client. Entries further
// left were written by the client itself and prove nothing, which is why the
// header is never believed without a trusted proxy in front.
func ClientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr // some test servers and muxes leave the port off
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client address %q: %w", r.RemoteAddr, err)
	}
	peer = peer.Unmap().WithZone("")
	if !contains(trusted, peer) {
		return peer, nil
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// A hop we cannot read: stop at the last address we could
				// vouch for rather than skip to one the client may have forged.
				return client, nil
			}
			client = a.Unmap().WithZone("")
			if !contains(trusted, client) {
				return client, nil
			}
		}
	}
	return client, nil
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
