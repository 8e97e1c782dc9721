package backup

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// Format identifies a berth backup; FormatVersion is the layout this code
// writes and the only one it restores. A change that an older berth would
// misread takes a new version.
const (
	Format        = "berth-backup"
	FormatVersion = 1
)

// maxHeaderSize bounds header.json, which is read whole: about 100 bytes
// a blob, so room for a couple of million blobs, and a hostile archive
// cannot make a restore allocate without limit.
const maxHeaderSize = 256 << 20

// Header is the first entry of every backup.
type Header struct {
	Format  string    `json:"format"`  // always Format
	Version int       `json:"version"` // FormatVersion
	Berth   string    `json:"berth"`   // the berth version that asked for the backup
	Created time.Time `json:"created"` // when the snapshot was taken
	// ID names this backup: 32 lower-case hex digits, random.
	ID string `json:"id"`
	// Base is the ID of the backup this one follows, for an incremental;
	// empty for a full backup.
	Base string `json:"base,omitempty"`
	// MetaSize is the length of the meta.db entry.
	MetaSize int64 `json:"metaSize"`
	// Blobs are the blobs this archive holds, sorted by digest.
	Blobs []Blob `json:"blobs"`
	// Inherited are the other blobs the snapshot records: the backups
	// before this one in its chain hold them. Sorted by digest.
	Inherited []Blob `json:"inherited,omitempty"`
	// TLS are the files of DATA/tls this archive holds (every backup holds
	// all there are, incrementals too), in store.TLSFileNames order.
	TLS []TLSFile `json:"tls,omitempty"`
}

// TLSFile is a file of DATA/tls a header lists.
type TLSFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Blob is a blob a header lists.
type Blob struct {
	Digest store.Digest `json:"digest"`
	Size   int64        `json:"size"`
}

// Incremental reports whether h follows another backup.
func (h *Header) Incremental() bool { return h.Base != "" }

// Holds returns every blob the snapshot records, by digest, with its size:
// Blobs and Inherited together. A backup that follows h leaves these out.
func (h *Header) Holds() map[store.Digest]int64 {
	out := make(map[store.Digest]int64, len(h.Blobs)+len(h.Inherited))
	for _, b := range h.Blobs {
		out[b.Digest] = b.Size
	}
	for _, b := range h.Inherited {
		out[b.Digest] = b.Size
	}
	return out
}

// Bytes returns the bytes this archive holds before compression: meta.db
// and its blobs.
func (h *Header) Bytes() int64 {
	n := h.MetaSize
	for _, b := range h.Blobs {
		n += b.Size
	}
	return n
}

// newID returns a fresh backup id.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate backup id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ErrNotBackup is returned for a stream that is not a berth backup.
var ErrNotBackup = errors.New("not a berth backup")

// decodeHeader parses and checks header.json. The format and version are
// checked before anything else, so a backup of another version fails with
// that message rather than with whatever its layout trips over.
func decodeHeader(b []byte) (Header, error) {
	var probe struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
		Berth   string `json:"berth"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.Format != Format {
		return Header{}, fmt.Errorf("%w: its header.json does not say %q", ErrNotBackup, Format)
	}
	if probe.Version != FormatVersion {
		return Header{}, fmt.Errorf("it has backup format version %d, and this berth restores only version %d: use the berth that wrote it (%s)",
			probe.Version, FormatVersion, probe.Berth)
	}
	var h Header
	if err := json.Unmarshal(b, &h); err != nil {
		return Header{}, fmt.Errorf("header.json: %w", err)
	}
	return h, h.validate()
}

// validate checks what a restore relies on: well-formed ids, digests and
// sizes, and no blob listed twice.
func (h *Header) validate() error {
	if !validID(h.ID) {
		return fmt.Errorf("header.json: id %q is not 32 hex digits", h.ID)
	}
	if h.Base != "" && (!validID(h.Base) || h.Base == h.ID) {
		return fmt.Errorf("header.json: base %q is not the id of another backup", h.Base)
	}
	if h.MetaSize <= 0 {
		return fmt.Errorf("header.json: meta.db size %d", h.MetaSize)
	}
	files := map[string]bool{}
	for _, f := range h.TLS {
		switch {
		case !slices.Contains(store.TLSFileNames, f.Name):
			return fmt.Errorf("header.json: %q is not a file of DATA/tls", f.Name)
		case f.Size < 0 || f.Size > store.MaxTLSFileSize:
			return fmt.Errorf("header.json: tls/%s has size %d", f.Name, f.Size)
		case files[f.Name]:
			return fmt.Errorf("header.json: tls/%s is listed twice", f.Name)
		}
		files[f.Name] = true
	}
	seen := make(map[store.Digest]bool, len(h.Blobs)+len(h.Inherited))
	for _, b := range append(append([]Blob(nil), h.Blobs...), h.Inherited...) {
		if _, err := store.ParseDigest(string(b.Digest)); err != nil {
			return fmt.Errorf("header.json: %w", err)
		}
		if b.Size < 0 {
			return fmt.Errorf("header.json: blob %s has size %d", b.Digest, b.Size)
		}
		if seen[b.Digest] {
			return fmt.Errorf("header.json: blob %s is listed twice", b.Digest)
		}
		seen[b.Digest] = true
	}
	return nil
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && id == strings.ToLower(id)
}
