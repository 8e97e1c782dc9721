package server

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// A reverse proxy in front of berth tells it, in X-Forwarded-* headers,
// what the client used: its address, the scheme and the host name. Anyone
// can send those headers, so they count only when the TCP peer is a
// trusted proxy (--trusted-proxy). Then they shape the token realm (and so
// where clients fetch tokens) and the address the password throttle and
// the access log use.
//
// fiber has its own proxy support (Config.ProxyHeader, TrustedProxies), but
// its c.IP() takes the first valid X-Forwarded-For entry, which the client
// writes itself when the proxy appends to the header, as nginx's
// $proxy_add_x_forwarded_for does. realClient below reads the header from
// the right instead.

// DefaultTrustedProxies are the proxies trusted when --trusted-proxy is not
// given: loopback only, so a proxy on the same machine (nginx, Traefik, a
// NAS's built-in reverse proxy) works without configuration, and nobody
// else's headers count.
var DefaultTrustedProxies = []string{"127.0.0.0/8", "::1/128"}

// ParseTrustedProxies parses --trusted-proxy values: CIDR prefixes such as
// 10.0.0.0/8, or single addresses, which stand for themselves. The word
// "none" alone trusts nobody. It returns an error naming the first value
// that is neither.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	if len(values) == 1 && strings.TrimSpace(values[0]) == "none" {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR prefix such as 10.0.0.0/8", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// proxySet is the trusted proxies.
type proxySet []netip.Prefix

// contains reports whether a is one of the trusted proxies. IPv4 addresses
// mapped into IPv6 (::ffff:10.0.0.1) match IPv4 prefixes.
func (ps proxySet) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trustedKey is the c.Locals key of whether the TCP peer is a trusted proxy.
const trustedKey = "berth.trustedPeer"

// realClient is middleware that runs before everything that asks who the
// client is. It notes whether the TCP peer is a trusted proxy, and if so
// replaces the request's remote address by the client's from
// X-Forwarded-For, so that c.IP() names the client everywhere after it: in
// the password throttle and in the log.
func (s *Server) realClient(c *fiber.Ctx) error {
	ctx := c.Context()
	// Back to the connection's own peer: fasthttp keeps a request context
	// for a whole keep-alive connection, rewrite included.
	ctx.SetRemoteAddr(nil)
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	trusted := s.proxies.contains(peer)
	c.Locals(trustedKey, trusted)
	if trusted {
		if client := forwardedClient(peer, c.Get(fiber.HeaderXForwardedFor), s.proxies.contains); client != peer.Unmap() {
			ctx.SetRemoteAddr(&net.TCPAddr{IP: client.AsSlice()})
		}
	}
	return c.Next()
}

// fromTrustedProxy reports whether the request came through a trusted
// proxy, whose X-Forwarded-* headers may be believed.
func fromTrustedProxy(c *fiber.Ctx) bool {
	trusted, _ := c.Locals(trustedKey).(bool)
	return trusted
}

// forwardedClient returns the client's address from peer, the TCP peer,
// and xff, the X-Forwarded-For header, to which every proxy appends the
// address it received the request from. Reading from the right, each hop
// that is a trusted proxy vouches for the entry before it; the first
// address that is not a trusted proxy is the client. Entries left of it,
// and any entry that does not parse, came from the client and are not
// believed: an unparsable entry stops the walk at the trusted hop that
// reported it. When every hop is trusted, the leftmost is the client.
func forwardedClient(peer netip.Addr, xff string, trusted func(netip.Addr) bool) netip.Addr {
	client := peer.Unmap()
	if xff == "" {
		return client
	}
	entries := strings.Split(xff, ",")
	for i := len(entries) - 1; i >= 0 && trusted(client); i-- {
		a, ok := parseForwardedAddr(entries[i])
		if !ok {
			break
		}
		client = a
	}
	return client
}

// parseForwardedAddr parses one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port ("192.0.2.1:4711", "[2001:db8::1]:4711"),
// as some proxies write. The address is returned without zone, IPv4 mapped
// into IPv6 as plain IPv4. Anything else ("unknown", a host name, an
// obfuscated identifier) is not an address.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}
