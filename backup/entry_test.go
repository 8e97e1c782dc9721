package backup

import (
	"archive/tar"
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hex128 = hex64 + hex64
)

func TestParseEntryName(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        Entry  // when accepted
		reason      string // part of the refusal, when refused
	}{
		{name: "Header", input: "header.json", want: Entry{Kind: EntryHeader}},
		{name: "Meta", input: "meta.db", want: Entry{Kind: EntryMeta}},
		{name: "SHA256Blob", input: "blobs/sha256/01/" + hex64, want: Entry{Kind: EntryBlob, Digest: store.Digest("sha256:" + hex64)}},
		{name: "SHA512Blob", input: "blobs/sha512/01/" + hex128, want: Entry{Kind: EntryBlob, Digest: store.Digest("sha512:" + hex128)}},
		{name: "TLSCAKey", input: "tls/ca.key", want: Entry{Kind: EntryTLS, File: "ca.key"}},
		{name: "TLSServerCert", input: "tls/server.crt", want: Entry{Kind: EntryTLS, File: "server.crt"}},
		{name: "TLSOtherFile", input: "tls/notes.txt", reason: "not one of the files of DATA/tls"},
		{name: "TLSDeeper", input: "tls/x/ca.key", reason: "not part of a berth backup"},
		{name: "TLSDotDot", input: "tls/../meta.db", reason: `".."`},
		{name: "Empty", input: "", reason: "empty name"},
		{name: "Absolute", input: "/etc/passwd", reason: "absolute path"},
		{name: "AbsoluteBlob", input: "/blobs/sha256/01/" + hex64, reason: "absolute path"},
		{name: "DotDot", input: "../evil", reason: `".."`},
		{name: "DotDotInside", input: "blobs/sha256/../../../evil", reason: `".."`},
		{name: "DotDotLast", input: "blobs/..", reason: `".."`},
		{name: "DotSlash", input: "./header.json", reason: "not part of a berth backup"},
		{name: "Unknown", input: "notes.txt", reason: "not part of a berth backup"},
		{name: "Directory", input: "blobs/", reason: "not part of a berth backup"},
		{name: "WrongShard", input: "blobs/sha256/ff/" + hex64, reason: "wrong shard"},
		{name: "UpperHex", input: "blobs/sha256/01/" + strings.ToUpper(hex64), reason: "not named by a blob digest"},
		{name: "ShortHex", input: "blobs/sha256/01/0123", reason: "not named by a blob digest"},
		{name: "UnknownAlgorithm", input: "blobs/md5/01/0123456789abcdef0123456789abcdef", reason: "not named by a blob digest"},
		{name: "TooDeep", input: "blobs/sha256/01/" + hex64 + "/x", reason: "not part of a berth backup"},
		{name: "Uploads", input: "uploads/0123456789abcdef0123456789abcdef", reason: "not part of a berth backup"},
		{name: "ControlSocket", input: "control.sock", reason: "not part of a berth backup"},
		{name: "DoubleSlash", input: "blobs//sha256/01/" + hex64, reason: "not part of a berth backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEntryName(tc.input)
			if tc.reason != "" {
				var ee *EntryError
				if !errors.As(err, &ee) || ee.Name != tc.input || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("ParseEntryName(%q) = %+v, %v; want an *EntryError naming it with %q", tc.input, got, err, tc.reason)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseEntryName(%q) = %+v, %v; want %+v", tc.input, got, err, tc.want)
			}
			if got.Name() != tc.input {
				t.Errorf("Name() = %q, want %q", got.Name(), tc.input)
			}
		})
	}
}

func TestCheckEntry(t *testing.T) {
	blob := "blobs/sha256/01/" + hex64
	for _, tc := range []struct {
		name   string
		header tar.Header
		reason string // empty: accepted
	}{
		{name: "Regular", header: tar.Header{Typeflag: tar.TypeReg, Name: blob, Size: 3}},
		{name: "Symlink", header: tar.Header{Typeflag: tar.TypeSymlink, Name: blob, Linkname: "/etc/passwd"}, reason: "symbolic link"},
		{name: "HardLink", header: tar.Header{Typeflag: tar.TypeLink, Name: blob, Linkname: "meta.db"}, reason: "hard link"},
		{name: "CharDevice", header: tar.Header{Typeflag: tar.TypeChar, Name: blob}, reason: "device"},
		{name: "BlockDevice", header: tar.Header{Typeflag: tar.TypeBlock, Name: blob}, reason: "device"},
		{name: "Fifo", header: tar.Header{Typeflag: tar.TypeFifo, Name: blob}, reason: "named pipe"},
		{name: "Directory", header: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/"}, reason: "directory"},
		{name: "GNUSparse", header: tar.Header{Typeflag: tar.TypeGNUSparse, Name: blob}, reason: "tar type"},
		{name: "NegativeSize", header: tar.Header{Typeflag: tar.TypeReg, Name: blob, Size: -1}, reason: "negative size"},
		{name: "RegularOutside", header: tar.Header{Typeflag: tar.TypeReg, Name: "../x"}, reason: `".."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkEntry(&tc.header)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("checkEntry(%+v): %v", tc.header, err)
			case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), tc.header.Name)):
				t.Fatalf("checkEntry(%+v) = %v, want an error naming the entry with %q", tc.header, err, tc.reason)
			}
		})
	}
}

// FuzzEntryName checks the properties of the layout grammar: no panic; an
// accepted name is relative, free of "..", one of the three shapes, and
// round-trips through Name; a refused one yields an *EntryError naming it.
// (The shapes: header.json and meta.db, a blob, a file of DATA/tls.)
func FuzzEntryName(f *testing.F) {
	for _, seed := range []string{
		"header.json", "meta.db", "blobs/sha256/01/" + hex64, "blobs/sha512/01/" + hex128,
		"../etc/passwd", "/abs", "blobs/sha256/01/../../x", "blobs/", "", "blobs/sha256/ff/" + hex64,
		"tls/ca.key", "tls/../ca.key", "tls/ca.key/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		e, err := ParseEntryName(name)
		if err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Name != name {
				t.Fatalf("ParseEntryName(%q): %v is not an *EntryError naming the input", name, err)
			}
			return
		}
		if got := e.Name(); got != name {
			t.Fatalf("ParseEntryName(%q).Name() = %q", name, got)
		}
		if strings.HasPrefix(name, "/") || hasDotDot(name) || path.Clean(name) != name {
			t.Fatalf("accepted %q, which is not a clean relative name", name)
		}
		switch e.Kind {
		case EntryHeader, EntryMeta:
		case EntryBlob:
			if _, err := store.ParseDigest(string(e.Digest)); err != nil {
				t.Fatalf("accepted %q as blob %q: %v", name, e.Digest, err)
			}
		case EntryTLS:
			if !slices.Contains(store.TLSFileNames, e.File) {
				t.Fatalf("accepted %q as the TLS file %q", name, e.File)
			}
		default:
			t.Fatalf("accepted %q with kind %d", name, e.Kind)
		}
	})
}
