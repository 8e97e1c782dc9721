package server

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// newServerWith serves a fresh store in-process with cfg and token auth,
// logging at debug level into the returned buffer. fiber's in-process
// requests come from 0.0.0.0, so TrustedProxies 0.0.0.0/32 makes the test
// client a trusted proxy.
func newServerWith(t *testing.T, cfg Config) (*Server, *bytes.Buffer, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Auth, err = auth.NewService(st, auth.Options{}); err != nil {
		t.Fatal(err)
	}
	return New(st, cfg), logs, st
}

var testPeer = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		input   []string
		want    string // the prefixes, space-separated
		wantErr bool
	}{
		{"CIDR", []string{"10.0.0.0/8"}, "10.0.0.0/8", false},
		{"CIDR with host bits", []string{"10.1.2.3/8"}, "10.0.0.0/8", false},
		{"IPv4 address", []string{"192.168.1.2"}, "192.168.1.2/32", false},
		{"IPv6 address", []string{"::1"}, "::1/128", false},
		{"mapped IPv4", []string{"::ffff:10.0.0.1"}, "10.0.0.1/32", false},
		{"several, spaces", []string{" 10.0.0.0/8", "fd00::/8 "}, "10.0.0.0/8 fd00::/8", false},
		{"default", DefaultTrustedProxies, "127.0.0.0/8 ::1/128", false},
		{"none", []string{"none"}, "", false},
		{"host name", []string{"proxy.lan"}, "", true},
		{"zone", []string{"fe80::1%eth0"}, "", true},
		{"bad prefix length", []string{"10.0.0.0/33"}, "", true},
		{"empty", []string{""}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParseTrustedProxies(tc.input)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseTrustedProxies(%q): error %v, want error %v", tc.input, err, tc.wantErr)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("ParseTrustedProxies(%q) = %q, want %q", tc.input, got, tc.want)
			}
		})
	}
}

func TestForwardedClient(t *testing.T) {
	proxies := proxySet{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name, peer, xff, want string
	}{
		{"no header", "10.0.0.1", "", "10.0.0.1"},
		{"one hop", "10.0.0.1", "192.0.2.7", "192.0.2.7"},
		{"client's own entry ignored", "10.0.0.1", "6.6.6.6, 192.0.2.7", "192.0.2.7"},
		{"chain of trusted proxies", "10.0.0.1", "192.0.2.7, 10.0.0.2, 10.0.0.3", "192.0.2.7"},
		{"all trusted: leftmost", "10.0.0.1", "10.0.0.9, 10.0.0.2", "10.0.0.9"},
		{"garbage stops at the hop that reported it", "10.0.0.1", "192.0.2.7, garbage, 10.0.0.2", "10.0.0.2"},
		{"unknown", "10.0.0.1", "unknown", "10.0.0.1"},
		{"with port", "10.0.0.1", "192.0.2.7:4711", "192.0.2.7"},
		{"IPv6 with port", "10.0.0.1", "[2001:db8::7]:4711", "2001:db8::7"},
		{"IPv6 with zone", "fd00::1", "fe80::7%eth0", "fe80::7"},
		{"mapped IPv4", "10.0.0.1", "::ffff:192.0.2.7", "192.0.2.7"},
		{"mapped peer", "::ffff:10.0.0.1", "192.0.2.7", "192.0.2.7"},
		{"empty entries", "10.0.0.1", ", ,", "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := forwardedClient(netip.MustParseAddr(tc.peer), tc.xff, proxies.contains)
			if got.String() != tc.want {
				t.Errorf("forwardedClient(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

// FuzzForwardedClient checks the walk over X-Forwarded-For: the client is
// the peer or an address some entry names; it is the peer whenever the
// peer is not trusted; every trusted hop right of a client taken from the
// header is one the header names; and an accepted entry's address parses
// back to itself from its canonical form.
func FuzzForwardedClient(f *testing.F) {
	f.Add("10.0.0.1", "192.0.2.7, 10.0.0.2")
	f.Add("192.0.2.1", "10.0.0.9")
	f.Add("10.0.0.1", "[2001:db8::7]:80, unknown, 10.1.1.1")
	f.Add("::ffff:10.0.0.1", "fe80::1%25eth0,,")
	proxies := proxySet{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peerText, xff string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			return
		}
		got := forwardedClient(peer, xff, proxies.contains)
		if !proxies.contains(peer) && got != peer.Unmap() {
			t.Fatalf("untrusted peer %s: client %s from %q", peer, got, xff)
		}
		if got == peer.Unmap() {
			return
		}
		entries := strings.Split(xff, ",")
		at := -1
		for i := len(entries) - 1; i >= 0; i-- {
			a, ok := parseForwardedAddr(entries[i])
			if !ok {
				break
			}
			if back, ok := parseForwardedAddr(a.String()); !ok || back != a {
				t.Fatalf("entry %q parsed to %s, which parses back to %s, %v", entries[i], a, back, ok)
			}
			if a == got {
				at = i
				break
			}
			if !proxies.contains(a) {
				t.Fatalf("client %s found left of untrusted entry %s in %q", got, a, xff)
			}
		}
		if at < 0 {
			t.Fatalf("client %s is neither the peer %s nor an entry of %q", got, peer, xff)
		}
	})
}

// TestRealm_ForwardedHeadersOnlyFromTrustedProxies sends the same
// forwarded headers from a trusted and an untrusted peer.
func TestRealm_ForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	tests := []struct {
		name      string
		proxies   []netip.Prefix
		wantRealm string
	}{
		{"trusted", testPeer, "https://registry.example/token"},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "http://inner:5000/token"},
		{"nobody trusted", nil, "http://inner:5000/token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newServerWith(t, Config{TrustedProxies: tc.proxies})
			req := httptest.NewRequest(http.MethodGet, "http://inner:5000/v2/", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "registry.example")
			resp, _ := do(t, s, req)
			want := `Bearer realm="` + tc.wantRealm + `",service="berth"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("proxies %v:\nWWW-Authenticate %s\nwant             %s", tc.proxies, got, want)
			}
		})
	}
}

// TestThrottle_UsesTheForwardedClient locks out one forwarded client with
// wrong passwords and checks who else is locked out: another client behind
// the same trusted proxy is not; behind an untrusted peer, X-Forwarded-For
// is ignored, so changing it does not escape the lockout.
func TestThrottle_UsesTheForwardedClient(t *testing.T) {
	tests := []struct {
		name          string
		proxies       []netip.Prefix
		wantOtherCode int // for a second client after the first is locked out
	}{
		{"trusted proxy", testPeer, http.StatusUnauthorized},
		{"untrusted peer", nil, http.StatusTooManyRequests},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, logs, _ := newServerWith(t, Config{TrustedProxies: tc.proxies})
			try := func(client string) int {
				req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
				req.Header.Set("Authorization", basicAuth("alice", "wrong"))
				req.Header.Set("X-Forwarded-For", "6.6.6.6, "+client)
				resp, _ := do(t, s, req)
				return resp.StatusCode
			}
			for i := 0; i < 6; i++ {
				try("192.0.2.1")
			}
			if code := try("192.0.2.1"); code != http.StatusTooManyRequests {
				t.Fatalf("after 6 wrong passwords: %d, want 429", code)
			}
			if code := try("192.0.2.2"); code != tc.wantOtherCode {
				t.Errorf("another client: %d, want %d", code, tc.wantOtherCode)
			}
			wantRemote := "remote=0.0.0.0"
			if tc.proxies != nil {
				wantRemote = "remote=192.0.2.1"
			}
			if !strings.Contains(logs.String(), wantRemote) || strings.Contains(logs.String(), "remote=6.6.6.6") {
				t.Errorf("the log should name %s and never the client's own entry:\n%s", wantRemote, logs)
			}
		})
	}
}
