package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// fillStore stores a multi-arch index whose images share a layer, an image
// in another repository sharing it too, and a referrer of one of them.
func fillStore(t testing.TB, s *store.Store) {
	t.Helper()
	amd := storetest.PushImage(t, s, "app", "", nil, "base layer", "amd64 layer")
	arm := storetest.PushImage(t, s, "app", "", nil, "base layer", "arm64 layer")
	storetest.PushIndex(t, s, "app", "v1", amd, arm)
	storetest.PushImage(t, s, "tools/cli", "latest", nil, "base layer", "cli layer")
	storetest.PushImage(t, s, "app", "", amd, "sbom of amd64")
}

// writeBackup writes a backup of s (after base, when not nil).
func writeBackup(t testing.TB, s *store.Store, base *Header) ([]byte, Header) {
	t.Helper()
	var buf bytes.Buffer
	h, err := Write(context.Background(), s, &buf, Options{Base: base, BerthVersion: "test"})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes(), h
}

func restore(dir string, force bool, archives ...[]byte) (RestoreResult, error) {
	var inputs []Input
	for i, a := range archives {
		inputs = append(inputs, Input{Name: fmt.Sprintf("backup%d", i), R: bytes.NewReader(a)})
	}
	return Restore(context.Background(), dir, inputs, RestoreOptions{Force: force})
}

// dumpStore renders the stopped store in dir (storetest.Dump).
func dumpStore(t testing.TB, dir string) string { return storetest.Dump(t, dir) }

// treeOf maps every path under dir (relative) to what it is: a file's
// sha256, "dir", or a symlink's target.
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[rel] = "symlink " + target
		case e.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// rawEntry is a tar entry as a test writes it, hostile ones included.
type rawEntry struct {
	hdr  tar.Header
	data []byte
}

// entriesOf decodes a backup into its entries.
func entriesOf(t testing.TB, archive []byte) []rawEntry {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []rawEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rawEntry{hdr: *h, data: data})
	}
}

// encodeEntries writes entries as a tar stream compressed with zstd, as
// they are: sizes are taken from the data unless the header says otherwise
// for a non-regular entry.
func encodeEntries(t testing.TB, entries []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encodeRaw compresses b with zstd, as one frame.
func encodeRaw(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}
