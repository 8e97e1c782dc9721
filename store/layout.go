package store

import "path/filepath"

// The data directory's layout, as README.md documents it for users. These
// functions are the only place that spells a path inside DATA: every other
// package asks for them here.
//
//	DATA/meta.db                 bbolt: every record
//	DATA/blobs/<alg>/ab/<hex>    one file per blob (BlobPathIn)
//	DATA/uploads/                upload sessions and restores in progress
//	DATA/quarantine/<alg>/<hex>  corrupt blobs moved aside by verify --repair
//	DATA/control.sock            the running server's control socket
//	DATA/tls/                    certificates written by tls init
//	DATA/initial-admin-password  the first admin's password
const (
	metaFile          = "meta.db"
	blobsDir          = "blobs"
	uploadsDir        = "uploads"
	quarantineDir     = "quarantine"
	controlSocketFile = "control.sock"
)

// InitialPasswordFile holds the first admin's password, in DATA; commands
// name it in their output. The files of DATA/tls are in tlsfiles.go.
const InitialPasswordFile = "initial-admin-password"

// MetaPath returns the path of meta.db in the data directory dir.
func MetaPath(dir string) string { return filepath.Join(dir, metaFile) }

// UploadsDir returns the directory of upload sessions in dir: files there
// are on the same filesystem as the blobs, so a rename into place is atomic.
func UploadsDir(dir string) string { return filepath.Join(dir, uploadsDir) }

// ControlSocketPath returns the path of the running server's control
// socket in dir.
func ControlSocketPath(dir string) string { return filepath.Join(dir, controlSocketFile) }

// TLSDir returns the directory of the certificates in dir.
func TLSDir(dir string) string { return filepath.Join(dir, TLSDirName) }

// InitialPasswordPath returns the file that holds the first admin's
// password in dir.
func InitialPasswordPath(dir string) string { return filepath.Join(dir, InitialPasswordFile) }

// BlobsDir returns the root of the blob files in dir.
func BlobsDir(dir string) string { return filepath.Join(dir, blobsDir) }
