package admin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// TLSInit creates a CA and a server certificate in DATA/tls, for `serve
// --tls`. Run inside the server, it writes the files as the server's user;
// the server picks them up on SIGHUP.
type TLSInit struct {
	Hosts []string `flag:"host" usage:"a name or IP address clients use (repeatable, or comma-separated)" json:"hosts"`
	Force bool     `flag:"force" usage:"replace the server certificate (and with --new-ca the CA)" json:"force,omitempty"`
	NewCA bool     `flag:"new-ca" usage:"make a new CA even when DATA/tls has one" json:"new_ca,omitempty"`
	Key   string   `flag:"key" usage:"key type: ecdsa (P-256) or rsa (3072 bits, for old clients)" json:"key"`
	Port  string   `flag:"port" usage:"the port clients use, for the trust instructions" json:"port"`
}

// TLSResult is what tls init made, for the instructions it prints.
type TLSResult struct {
	Dir        string    `json:"dir"`
	CAName     string    `json:"ca_name"`
	NewCA      bool      `json:"new_ca"`
	CANotAfter time.Time `json:"ca_not_after"`
	Hosts      []string  `json:"hosts"`
	NotAfter   time.Time `json:"not_after"`
	Port       string    `json:"port"`
}

var TLSInitOp = register(&Op[TLSInit, TLSResult]{
	Name:         "tls init",
	MakesDataDir: true,
	Defaults:     TLSInit{Key: "ecdsa", Port: "5000"},
	Do: func(_ context.Context, env *Env, _ *Task, req TLSInit) (*TLSResult, error) {
		opts, err := tlsInitOptionsOf(req)
		if err != nil {
			return nil, err
		}
		dir, err := filepath.Abs(store.TLSDir(env.Store.Dir()))
		if err != nil {
			return nil, err
		}
		res, err := initTLS(dir, opts, time.Now())
		if err != nil {
			return nil, fmt.Errorf("tls init: %w", err)
		}
		// Run as root while the service is stopped, the files take the owner
		// of DATA, so the service's user can read its keys.
		if err := store.OwnLike(env.Store.Dir(), dir); err != nil {
			return nil, fmt.Errorf("tls init: give %s the owner of the data directory: %w", dir, err)
		}
		if env.Logger != nil {
			env.Logger.Info("tls init", "dir", dir, "hosts", strings.Join(opts.hosts, ","), "new_ca", res.newCA)
		}
		return &TLSResult{Dir: res.dir, CAName: res.ca.Subject.CommonName, NewCA: res.newCA, CANotAfter: res.ca.NotAfter.UTC(),
			Hosts: opts.hosts, NotAfter: res.server.NotAfter.UTC(), Port: opts.port}, nil
	},
	Render: func(w Output, res *TLSResult) error { return writeTLSHowTo(w.Out, res) },
})

// The files of DATA/tls (store.TLSDir), by store's names.
const (
	caCertFile     = store.TLSCACert
	caKeyFile      = store.TLSCAKey
	serverCertFile = store.TLSServerCert
	serverKeyFile  = store.TLSServerKey
)

const (
	// caValidity is ten years: a CA copied to every client should not need
	// copying again soon.
	caValidity = 10 * 365 * 24 * time.Hour
	// serverValidity is 825 days, the longest Apple platforms accept for a
	// server certificate under any CA; `tls init --force` renews it with the
	// same CA, which clients already trust.
	serverValidity = 825 * 24 * time.Hour
	// clockSkew backdates certificates, so a client whose clock is a little
	// behind does not see them as not yet valid.
	clockSkew = time.Hour
)

// TLSFiles returns the paths of the server certificate and key that
// `tls init` writes in the data directory dataDir and `serve --tls` loads.
func TLSFiles(dataDir string) (cert, key string) {
	dir := store.TLSDir(dataDir)
	return filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile)
}

// tlsInitOptions are the flags of tls init.
type tlsInitOptions struct {
	hosts   []string // as given: DNS names and IP addresses
	force   bool     // replace existing files
	newCA   bool     // make a new CA even when one exists
	keyType string   // "ecdsa" or "rsa"
	port    string   // the port clients use, for the printed paths
}

// tlsInitOptionsOf checks the request of tls init.
func tlsInitOptionsOf(req TLSInit) (tlsInitOptions, error) {
	opts := tlsInitOptions{force: req.Force, newCA: req.NewCA, keyType: req.Key, port: req.Port}
	var err error
	if opts.hosts, err = parseTLSHosts(strings.Join(req.Hosts, ",")); err != nil {
		return opts, err
	}
	if k := req.Key; k != "ecdsa" && k != "rsa" {
		return opts, fmt.Errorf("--key: %q is not ecdsa or rsa", k)
	}
	if n, err := net.LookupPort("tcp", req.Port); err != nil || n == 0 || req.Port != fmt.Sprint(n) {
		return opts, fmt.Errorf("--port: %q is not a port number", req.Port)
	}
	return opts, nil
}

// parseTLSHosts splits --host into names and addresses and checks each:
// an IP address, or a DNS name (letters, digits, hyphens, dots; a leading
// "*." for a wildcard). Ports and URLs are refused with a hint.
func parseTLSHosts(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--host is required: the names and addresses clients use to reach the registry, such as --host registry.lan,192.168.1.10")
	}
	var hosts []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			hosts = append(hosts, ip.String())
			continue
		}
		if !validDNSName(h) {
			return nil, fmt.Errorf("--host: %q is neither an IP address nor a DNS name (no ports or URLs: the port goes in --port)", h)
		}
		hosts = append(hosts, strings.ToLower(h))
	}
	return hosts, nil
}

func validDNSName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// tlsResult is what initTLS made.
type tlsResult struct {
	dir    string
	ca     *x509.Certificate
	newCA  bool // the CA was created now, not kept
	server *x509.Certificate
}

// initTLS writes a server certificate for opts.hosts, and its key, into
// dir, signed by the CA in dir; it creates the CA first when there is none
// or opts.newCA asks for one. It refuses to replace any file without
// opts.force.
func initTLS(dir string, opts tlsInitOptions, now time.Time) (tlsResult, error) {
	res := tlsResult{dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	caCertPath, caKeyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	haveCA := exists(caCertPath) && exists(caKeyPath)
	res.newCA = opts.newCA || !haveCA
	if !opts.force {
		replaced := []string{serverCertFile, serverKeyFile}
		if res.newCA {
			replaced = append(replaced, caCertFile, caKeyFile)
		}
		for _, f := range replaced {
			if exists(filepath.Join(dir, f)) {
				return res, fmt.Errorf("%s exists; --force replaces the server certificate and keeps the CA (add --new-ca to replace the CA too, which every client must then trust anew)", filepath.Join(dir, f))
			}
		}
	}
	var caKey crypto.Signer
	var err error
	if res.newCA {
		if res.ca, caKey, err = newCA(opts, now); err == nil {
			err = writePEMFiles(caKeyPath, caCertPath, caKey, res.ca)
		}
	} else {
		res.ca, caKey, err = loadCA(caCertPath, caKeyPath)
	}
	if err != nil {
		return res, err
	}
	serverKey, err := newKey(opts.keyType)
	if err != nil {
		return res, err
	}
	if res.server, err = newServerCert(opts.hosts, serverKey, res.ca, caKey, now); err != nil {
		return res, err
	}
	err = writePEMFiles(filepath.Join(dir, serverKeyFile), filepath.Join(dir, serverCertFile), serverKey, res.server)
	return res, err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// newKey makes a private key: ECDSA P-256, which every current client
// speaks, or RSA 3072 for old ones.
func newKey(keyType string) (crypto.Signer, error) {
	if keyType == "rsa" {
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newCA(opts tlsInitOptions, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey(opts.keyType)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"berth"},
			// A date in the name tells this CA from an earlier one in a
			// client's trust store.
			CommonName: fmt.Sprintf("berth CA for %s, %s", opts.hosts[0], now.UTC().Format("2006-01-02")),
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs server certificates, never another CA
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	return cert, key, err
}

func newServerCert(hosts []string, key crypto.Signer, ca *x509.Certificate, caKey crypto.Signer, now time.Time) (*x509.Certificate, error) {
	notAfter := now.Add(serverValidity)
	if ca.NotAfter.Before(notAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		// Clients match the SANs; the CN is for people reading the file.
		Subject:     pkix.Name{Organization: []string{"berth"}, CommonName: hosts[0]},
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(tmpl, ca, key.Public(), caKey)
}

// sign gives tmpl a random serial number and signs it with parent's key.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// loadCA reads the CA of an earlier tls init, to sign a new server
// certificate with it.
func loadCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load the CA (--new-ca makes a new one): %w", err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", certPath, err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ca.IsCA || !ok {
		return nil, nil, fmt.Errorf("%s is not a CA certificate (--new-ca makes a new one)", certPath)
	}
	return ca, key, nil
}

// writePEMFiles writes key (mode 0600) and then cert (0644), each to a
// temporary file renamed into place, so a server reloading on SIGHUP never
// reads half a file. A reload between the two renames finds a key that
// does not match its certificate, refuses it and keeps the old pair.
func writePEMFiles(keyPath, certPath string, key crypto.Signer, cert *x509.Certificate) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// writeFileAtomic writes data to path whole or not at all
// (store.WriteFileAtomic).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return store.WriteFileAtomic(path, mode, func(w io.Writer) error {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}
