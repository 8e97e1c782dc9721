package store

// The files of DATA/tls (TLSDir): `berth tls init` writes them, `serve
// --tls` reads them, a backup carries them.
const (
	TLSDirName    = "tls"
	TLSCACert     = "ca.crt"
	TLSCAKey      = "ca.key"
	TLSServerCert = "server.crt"
	TLSServerKey  = "server.key"
)

// TLSFileNames lists the files of DATA/tls, certificates before keys.
var TLSFileNames = []string{TLSCACert, TLSServerCert, TLSCAKey, TLSServerKey}

// MaxTLSFileSize bounds a file of DATA/tls as a backup carries it: a PEM
// certificate chain or key is a few kilobytes.
const MaxTLSFileSize = 1 << 20

// TLSFileMode is the mode a file of DATA/tls is written with: keys are
// private, certificates are not.
func TLSFileMode(name string) uint32 {
	if name == TLSCAKey || name == TLSServerKey {
		return 0o600
	}
	return 0o644
}
