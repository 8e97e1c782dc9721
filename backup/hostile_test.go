package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// TestRestore_HostileArchives feeds Restore archives that are damaged or
// made to attack it. Each must fail with a message naming the input (and
// the entry, where one is to blame), leave the data directory exactly as it
// was, and leave nothing beside it: the restore wrote only inside its
// temporary directory, which is gone.
func TestRestore_HostileArchives(t *testing.T) {
	src := storetest.Open(t, t.TempDir())
	fillStore(t, src)
	full, fullHdr := writeBackup(t, src, nil)
	storetest.PushImage(t, src, "app", "v2", nil, "v2 layer")
	inc1, inc1Hdr := writeBackup(t, src, &fullHdr)
	storetest.PushImage(t, src, "app", "v3", nil, "v3 layer")
	inc2, _ := writeBackup(t, src, &inc1Hdr)
	blob := fullHdr.Blobs[0]
	blobName := Entry{Kind: EntryBlob, Digest: blob.Digest}.Name()
	outside := filepath.Join(os.TempDir(), "berth-hostile-"+fullHdr.ID)

	edit := func(archive []byte, f func([]rawEntry) []rawEntry) []byte {
		return encodeEntries(t, f(entriesOf(t, archive)))
	}
	insert := func(archive []byte, e rawEntry) []byte { // right after the header
		return edit(archive, func(es []rawEntry) []rawEntry {
			return append([]rawEntry{es[0], e}, es[1:]...)
		})
	}
	reg := func(name, data string) rawEntry {
		return rawEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, data: []byte(data)}
	}
	editHeader := func(archive []byte, f func(map[string]any)) []byte {
		return edit(archive, func(es []rawEntry) []rawEntry {
			var h map[string]any
			if err := json.Unmarshal(es[0].data, &h); err != nil {
				t.Fatal(err)
			}
			f(h)
			es[0].data, _ = json.Marshal(h)
			return es
		})
	}

	for _, tc := range []struct {
		name   string
		inputs [][]byte
		want   []string // parts of the error message
	}{
		{"PathTraversal", [][]byte{insert(full, reg("../evil", "x"))}, []string{`entry "../evil"`, `".."`}},
		{"TraversalInBlobs", [][]byte{insert(full, reg("blobs/sha256/../../../evil", "x"))}, []string{`"blobs/sha256/../../../evil"`, `".."`}},
		{"AbsolutePath", [][]byte{insert(full, reg(outside, "x"))}, []string{outside, "absolute path"}},
		{"Symlink", [][]byte{insert(full, rawEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: blobName, Linkname: "/etc/passwd"}})},
			[]string{blobName, "symbolic link"}},
		{"HardLink", [][]byte{insert(full, rawEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: blobName, Linkname: "meta.db"}})},
			[]string{blobName, "hard link"}},
		{"Device", [][]byte{insert(full, rawEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "meta.db", Devmajor: 1, Devminor: 3}})},
			[]string{`"meta.db"`, "device"}},
		{"Directory", [][]byte{insert(full, rawEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755}})},
			[]string{`"blobs/"`, "directory"}},
		{"UnknownFile", [][]byte{insert(full, reg("notes.txt", "hello"))}, []string{`"notes.txt"`, "not part of a berth backup"}},
		{"BlobMismatch", [][]byte{edit(full, func(es []rawEntry) []rawEntry {
			for i := range es {
				if es[i].hdr.Name == blobName {
					es[i].data = bytes.Repeat([]byte("z"), len(es[i].data))
				}
			}
			return es
		})}, []string{blobName, "does not match its name"}},
		{"UnlistedBlob", [][]byte{insert(full, reg(Entry{Kind: EntryBlob, Digest: store.DigestOf(store.SHA256, []byte("stray"))}.Name(), "stray"))},
			[]string{"header does not list"}},
		{"DuplicateBlob", [][]byte{edit(full, func(es []rawEntry) []rawEntry {
			return append(es, es[len(es)-1])
		})}, []string{"comes twice"}},
		{"TruncatedStream", [][]byte{full[:len(full)/2]}, []string{"truncated or corrupt"}},
		{"TruncatedAtEntry", [][]byte{edit(full, func(es []rawEntry) []rawEntry { return es[:len(es)-1] })},
			[]string{"truncated", "blobs its header lists are missing"}},
		{"NoMeta", [][]byte{edit(full, func(es []rawEntry) []rawEntry { return es[:1] })}, []string{"truncated", "meta.db"}},
		{"CorruptCompression", [][]byte{flipMiddle(full)}, []string{"backup0"}},
		{"TrailingData", [][]byte{append(bytes.Clone(full), zstdOf(t, []byte("garbage after the end"))...)}, []string{"data after the end"}},
		{"WrongVersion", [][]byte{editHeader(full, func(h map[string]any) { h["version"] = 2 })},
			[]string{"format version 2", "only version 1"}},
		{"NotABackup", [][]byte{gzipOf(t, []byte("just a tarball"))}, []string{"not a berth backup", "not zstd"}},
		{"NotOurTar", [][]byte{encodeEntries(t, []rawEntry{reg("meta.db", "x")})}, []string{"not a berth backup", "first entry"}},
		{"ForeignHeader", [][]byte{editHeader(full, func(h map[string]any) { h["format"] = "something-else" })}, []string{"not a berth backup"}},
		{"HeaderListsMore", [][]byte{editHeader(full, func(h map[string]any) {
			h["inherited"] = []any{map[string]any{"digest": store.DigestOf(store.SHA256, []byte("x")), "size": 1}}
		})}, []string{"needs blob"}},
		{"MetaDisagrees", [][]byte{edit(full, func(es []rawEntry) []rawEntry {
			stray := reg(Entry{Kind: EntryBlob, Digest: store.DigestOf(store.SHA256, []byte("stray"))}.Name(), "stray")
			var h map[string]any
			json.Unmarshal(es[0].data, &h)
			h["blobs"] = append(h["blobs"].([]any), map[string]any{"digest": store.DigestOf(store.SHA256, []byte("stray")), "size": 5})
			es[0].data, _ = json.Marshal(h)
			return append(es, stray)
		})}, []string{"lists 10 blobs", "meta.db records 9"}},
		{"IncrementalWithoutBase", [][]byte{inc1}, []string{"backup0 is an incremental backup", fullHdr.ID}},
		{"IncrementalSkipped", [][]byte{full, inc2}, []string{"backup1 follows backup " + inc1Hdr.ID, "before it is backup " + fullHdr.ID}},
		{"TwoFullBackups", [][]byte{full, full}, []string{"backup1 is a full backup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			data := filepath.Join(parent, "data")
			old := storetest.Open(t, data)
			storetest.PushImage(t, old, "precious", "v1", nil, "precious layer")
			old.Close()
			before := treeOf(t, parent)

			_, err := restore(data, true, tc.inputs...)
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "backup") {
				t.Errorf("error %q does not name the input", err)
			}
			if after := treeOf(t, parent); !mapsEqual(before, after) {
				t.Errorf("the failed restore changed the data directory or left something beside it:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat(outside); err == nil {
				os.Remove(outside)
				t.Errorf("the restore wrote %s", outside)
			}
		})
	}
}

// flipMiddle returns a copy of b with one bit flipped halfway through.
func flipMiddle(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x10
	return c
}

func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	return encodeRaw(t, b)
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
