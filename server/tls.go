package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// Certificate is a TLS certificate and key served from two PEM files and
// reloaded from them on demand (serve reloads on SIGHUP). Each handshake
// takes the pair current at that moment, so a reload replaces the
// certificate for new connections and leaves open ones alone. It is safe
// for concurrent use.
type Certificate struct {
	certFile, keyFile string
	pair              atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads the pair from certFile (the server certificate,
// optionally followed by intermediates) and keyFile. It fails when either
// file cannot be read or the key does not match the certificate.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On any error it keeps serving the pair it
// had, so a half-written or mismatched pair never reaches a client.
func (c *Certificate) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("parse %s: %w", c.certFile, err)
		}
	}
	c.pair.Store(&pair)
	return nil
}

// Leaf returns the server certificate being served, for its names and
// expiry.
func (c *Certificate) Leaf() *x509.Certificate { return c.pair.Load().Leaf }

// TLSConfig returns a server configuration that serves the current pair.
// fasthttp speaks HTTP/1.1 only, hence no h2 in ALPN.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.pair.Load(), nil
		},
	}
}

// ExpiresWithin reports whether the served certificate's validity ends
// within d of now.
func (c *Certificate) ExpiresWithin(d time.Duration, now time.Time) bool {
	return c.Leaf().NotAfter.Before(now.Add(d))
}
