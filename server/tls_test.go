package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 named cn,
// and its key, into dir; it returns the certificate.
func writeSelfSigned(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so a client can trust it as its own root
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, "server.key"), "PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCertificate(t *testing.T) {
	dir := t.TempDir()
	first := writeSelfSigned(t, dir, "first")
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	c, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf().Subject.CommonName != "first" {
		t.Fatalf("serving %q, want first", c.Leaf().Subject.CommonName)
	}
	if !c.ExpiresWithin(25*time.Hour, time.Now()) || c.ExpiresWithin(23*time.Hour, time.Now()) {
		t.Errorf("ExpiresWithin disagrees with NotAfter %s", c.Leaf().NotAfter)
	}

	t.Run("ErrMismatchKeepsTheOldPair", func(t *testing.T) {
		other := t.TempDir()
		writeSelfSigned(t, other, "other")
		// The new key beside the old certificate, as between the two
		// renames of `tls init`.
		key, _ := os.ReadFile(filepath.Join(other, "server.key"))
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Reload(); err == nil || !strings.Contains(err.Error(), "server.crt") {
			t.Fatalf("Reload with a mismatched key: %v, want an error naming the files", err)
		}
		if c.Leaf().SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("a failed reload replaced the certificate")
		}
	})
	t.Run("ErrMissingFiles", func(t *testing.T) {
		if _, err := LoadCertificate(filepath.Join(dir, "nope.crt"), keyFile); err == nil {
			t.Fatal("LoadCertificate of a missing file succeeded")
		}
	})
}

// TestServe_TLSReloadKeepsConnections serves HTTPS, reloads a new
// certificate, and checks that a connection opened before the reload goes
// on serving while new connections get the new certificate.
func TestServe_TLSReloadKeepsConnections(t *testing.T) {
	dir := t.TempDir()
	first := writeSelfSigned(t, dir, "first")
	cert, err := LoadCertificate(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServer(t)
	s.tls = cert.TLSConfig()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })

	roots := x509.NewCertPool()
	roots.AddCert(first)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	url := "https://" + ln.Addr().String() + "/healthz"
	get := func() (reused bool) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return reused
	}
	get()

	second := writeSelfSigned(t, dir, "second")
	if err := cert.Reload(); err != nil {
		t.Fatal(err)
	}
	if !get() {
		t.Errorf("the request after the reload did not reuse the open connection")
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("a new connection got %q, want the reloaded %q", got.Subject.CommonName, second.Subject.CommonName)
	}
}
