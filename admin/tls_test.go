package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

func TestParseTLSHosts(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    []string
		wantErr string // a part of the error; "" for none
	}{
		{"one name", "registry.lan", []string{"registry.lan"}, ""},
		{"names and addresses", "Registry.LAN, 192.168.1.10,::1", []string{"registry.lan", "192.168.1.10", "::1"}, ""},
		{"bracketed IPv6", "[fd00::5]", []string{"fd00::5"}, ""},
		{"wildcard", "*.lan.example", []string{"*.lan.example"}, ""},
		{"empty", " ", nil, "--host is required"},
		{"port", "registry.lan:5000", nil, "the port goes in --port"},
		{"URL", "https://registry.lan", nil, "neither an IP address nor a DNS name"},
		{"empty element", "a.lan,,b.lan", nil, "neither"},
		{"leading hyphen", "-bad.lan", nil, "neither"},
		{"underscore", "my_host", nil, "neither"},
		{"long label", strings.Repeat("a", 64) + ".lan", nil, "neither"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTLSHosts(tc.input)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseTLSHosts(%q): error %v, want one containing %q", tc.input, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("parseTLSHosts(%q) = %q, %v; want %q", tc.input, got, err, tc.want)
			}
		})
	}
}

// FuzzParseTLSHosts checks that every accepted host is a canonical IP
// address or a lower-case DNS name, and that the accepted list, joined
// again, parses to itself.
func FuzzParseTLSHosts(f *testing.F) {
	f.Add("registry.lan,192.168.1.10")
	f.Add("[::1], *.example.org")
	f.Add("a..b")
	f.Fuzz(func(t *testing.T, input string) {
		hosts, err := parseTLSHosts(input)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				if ip.String() != h {
					t.Fatalf("%q: address %q is not in canonical form", input, h)
				}
			} else if !validDNSName(h) || strings.ToLower(h) != h {
				t.Fatalf("%q: accepted %q, which is no lower-case DNS name", input, h)
			}
		}
		again, err := parseTLSHosts(strings.Join(hosts, ","))
		if err != nil || !slices.Equal(again, hosts) {
			t.Fatalf("%q: parsed to %q, which parses to %q, %v", input, hosts, again, err)
		}
	})
}

// tlsFiles reads the four files of DATA/tls.
func tlsFiles(t *testing.T, dataDir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range []string{caCertFile, caKeyFile, serverCertFile, serverKeyFile} {
		b, err := os.ReadFile(filepath.Join(store.TLSDir(dataDir), f))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// checkServerCert checks that DATA/tls holds a server certificate that
// verifies against its CA for every host, a matching key, and private
// keys that only the owner can read. It returns the CA and server key.
func checkServerCert(t *testing.T, dataDir string, hosts ...string) (*x509.Certificate, any) {
	t.Helper()
	dir := store.TLSDir(dataDir)
	for _, f := range []string{caKeyFile, serverKeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	ca, _, err := loadCA(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if d := ca.NotAfter.Sub(time.Now()); d < caValidity-2*time.Hour || !ca.IsCA || !ca.MaxPathLenZero {
		t.Errorf("CA valid for %s, IsCA %v, MaxPathLenZero %v", d, ca.IsCA, ca.MaxPathLenZero)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile))
	if err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if d := leaf.NotAfter.Sub(time.Now()); d > serverValidity {
		t.Errorf("server certificate valid for %s, more than %s", d, serverValidity)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
			t.Errorf("server certificate for %s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "elsewhere.example"}); err == nil {
		t.Errorf("the server certificate is valid for a host it was not made for")
	}
	return ca, pair.PrivateKey
}

// tlsReq is the request of tls init for hosts (comma-separated) with the
// defaults of the command line.
func tlsReq(hosts string) TLSInit {
	req := TLSInitOp.Defaults
	req.Hosts = []string{hosts}
	return req
}

func withTLS(req TLSInit, change func(*TLSInit)) TLSInit {
	change(&req)
	return req
}

func TestTLSInit(t *testing.T) {
	for _, way := range []string{"stopped", "serving"} {
		t.Run(way, func(t *testing.T) {
			dir := t.TempDir()
			if way == "serving" {
				mustServe(t, storetest.Open(t, dir))
			}
			r := call(t, dir, TLSInitOp, tlsReq("registry.lan,192.168.1.10"), "")
			if r.err != "" {
				t.Fatalf("tls init:\n%s", r)
			}
			for _, line := range []string{
				"cp ca.crt /etc/docker/certs.d/registry.lan:5000/ca.crt",
				"cp ca.crt /etc/containers/certs.d/registry.lan:5000/ca.crt",
				"/etc/containerd/certs.d/registry.lan:5000/hosts.toml",
				`[host."https://registry.lan:5000"]`,
				"update-ca-certificates",
				"update-ca-trust",
				filepath.Join(store.TLSDir(dir), caCertFile),
			} {
				if !strings.Contains(r.out, line) {
					t.Errorf("the instructions lack %q:\n%s", line, r.out)
				}
			}
			firstCA, _ := checkServerCert(t, dir, "registry.lan", "192.168.1.10")
			before := tlsFiles(t, dir)

			r = call(t, dir, TLSInitOp, tlsReq("other.lan"), "")
			if !strings.Contains(r.err, "--force") {
				t.Errorf("a second tls init without --force: %q, want a refusal naming --force", r.err)
			}
			if after := tlsFiles(t, dir); !mapsEqual(before, after) {
				t.Errorf("a refused tls init changed the files")
			}

			r = call(t, dir, TLSInitOp, withTLS(tlsReq("other.lan"), func(r *TLSInit) { r.Force, r.Port = true, "443" }), "")
			if r.err != "" || !strings.Contains(r.out, "cp ca.crt /etc/docker/certs.d/other.lan/ca.crt") || !strings.Contains(r.out, "kept") {
				t.Fatalf("tls init --force --port 443:\n%s", r)
			}
			if ca, _ := checkServerCert(t, dir, "other.lan"); !ca.Equal(firstCA) {
				t.Errorf("--force replaced the CA")
			}

			r = call(t, dir, TLSInitOp, withTLS(tlsReq("other.lan"), func(r *TLSInit) { r.Force, r.NewCA, r.Key = true, true, "rsa" }), "")
			if r.err != "" {
				t.Fatalf("tls init --force --new-ca --key rsa:\n%s", r)
			}
			ca, key := checkServerCert(t, dir, "other.lan")
			if ca.Equal(firstCA) {
				t.Errorf("--new-ca kept the CA")
			}
			if _, ok := key.(*rsa.PrivateKey); !ok {
				t.Errorf("--key rsa made a %T", key)
			}
		})
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return len(a) == len(b)
}

func TestTLSInit_Errors(t *testing.T) {
	tests := []struct {
		name    string
		req     TLSInit
		wantErr string
	}{
		{"no host", TLSInitOp.Defaults, "--host is required"},
		{"host with port", tlsReq("registry.lan:5000"), "the port goes in --port"},
		{"bad key", withTLS(tlsReq("a.lan"), func(r *TLSInit) { r.Key = "dsa" }), `--key: "dsa" is not ecdsa or rsa`},
		{"bad port", withTLS(tlsReq("a.lan"), func(r *TLSInit) { r.Port = "http" }), `--port: "http" is not a port number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := call(t, dir, TLSInitOp, tc.req, "")
			if !strings.Contains(r.err, tc.wantErr) {
				t.Fatalf("tls init %+v: error %q, want %q", tc.req, r.err, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(store.TLSDir(dir), caKeyFile)); err == nil {
				t.Errorf("a refused tls init wrote a CA")
			}
		})
	}
}

// TestTLSInit_DefaultKeyIsECDSA checks the default key type of both
// certificates.
func TestTLSInit_DefaultKeyIsECDSA(t *testing.T) {
	dir := t.TempDir()
	if r := call(t, dir, TLSInitOp, tlsReq("a.lan"), ""); r.err != "" {
		t.Fatal(r)
	}
	ca, key := checkServerCert(t, dir, "a.lan")
	if _, ok := key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("server key is %T", key)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T", ca.PublicKey)
	}
}
