package backup

import (
	"archive/tar"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Names of the fixed entries.
const (
	headerName = "header.json"
	metaName   = "meta.db"
	blobsDir   = "blobs"
	tlsDir     = store.TLSDirName
)

// EntryKind says what an archive entry holds.
type EntryKind int

// The kinds of entry a backup may have.
const (
	EntryHeader EntryKind = iota + 1 // header.json
	EntryMeta                        // meta.db
	EntryBlob                        // blobs/<alg>/<ab>/<hex>
	EntryTLS                         // tls/<file>, a file of DATA/tls
)

// Entry is an archive entry that fits the backup layout.
type Entry struct {
	Kind   EntryKind
	Digest store.Digest // set for EntryBlob
	File   string       // set for EntryTLS: one of store.TLSFileNames
}

// Name returns the entry's name in the archive.
func (e Entry) Name() string {
	switch e.Kind {
	case EntryHeader:
		return headerName
	case EntryMeta:
		return metaName
	case EntryBlob:
		h := e.Digest.Hex()
		return path.Join(blobsDir, e.Digest.Algorithm(), h[:2], h)
	case EntryTLS:
		return path.Join(tlsDir, e.File)
	}
	return ""
}

// EntryError is an archive entry a restore refuses. Its message names the
// entry and says why.
type EntryError struct {
	Name   string
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("entry %q %s", e.Name, e.Reason)
}

// ParseEntryName returns the entry that name stands for, or an *EntryError
// when name is not exactly one of the layout's names: header.json, meta.db,
// tls/<one of store.TLSFileNames>, or blobs/<alg>/<first 2 hex>/<hex> of a
// digest berth stores. Accepted
// names are relative, clean, and round-trip: Entry.Name returns name.
func ParseEntryName(name string) (Entry, error) {
	refuse := func(reason string) (Entry, error) { return Entry{}, &EntryError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return refuse("has an empty name")
	case strings.HasPrefix(name, "/"):
		return refuse("is an absolute path: a backup holds only relative names")
	case hasDotDot(name):
		return refuse(`contains "..": a backup holds nothing outside its data directory`)
	case name == headerName:
		return Entry{Kind: EntryHeader}, nil
	case name == metaName:
		return Entry{Kind: EntryMeta}, nil
	}
	parts := strings.Split(name, "/")
	if len(parts) == 2 && parts[0] == tlsDir {
		if !slices.Contains(store.TLSFileNames, parts[1]) {
			return refuse(fmt.Sprintf("is not one of the files of DATA/tls (%s)", strings.Join(store.TLSFileNames, ", ")))
		}
		return Entry{Kind: EntryTLS, File: parts[1]}, nil
	}
	if len(parts) != 4 || parts[0] != blobsDir {
		return refuse("is not part of a berth backup (header.json, meta.db, tls/<file>, blobs/<alg>/<ab>/<hex>)")
	}
	alg, shard, hex := parts[1], parts[2], parts[3]
	d, err := store.ParseDigest(alg + ":" + hex)
	if err != nil {
		return refuse(fmt.Sprintf("is not named by a blob digest: %v", err))
	}
	if len(hex) < 2 || shard != hex[:2] {
		return refuse("is in the wrong shard directory for its digest")
	}
	return Entry{Kind: EntryBlob, Digest: d}, nil
}

// hasDotDot reports whether any element of the slash-separated name is "..".
func hasDotDot(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

// checkEntry checks a tar header: a regular file of a sane size whose name
// fits the layout.
func checkEntry(h *tar.Header) (Entry, error) {
	refuse := func(reason string) (Entry, error) { return Entry{}, &EntryError{Name: h.Name, Reason: reason} }
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink:
		return refuse(fmt.Sprintf("is a symbolic link (to %q): a backup holds only regular files", h.Linkname))
	case tar.TypeLink:
		return refuse(fmt.Sprintf("is a hard link (to %q): a backup holds only regular files", h.Linkname))
	case tar.TypeChar, tar.TypeBlock:
		return refuse("is a device: a backup holds only regular files")
	case tar.TypeFifo:
		return refuse("is a named pipe: a backup holds only regular files")
	case tar.TypeDir:
		return refuse("is a directory: a backup holds only regular files")
	default:
		return refuse(fmt.Sprintf("has tar type %q: a backup holds only regular files", h.Typeflag))
	}
	if h.Size < 0 {
		return refuse("has a negative size")
	}
	return ParseEntryName(h.Name)
}
