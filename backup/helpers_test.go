package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-registry/berth/store"
)

// openStore opens the data directory dir and closes it when the test ends.
func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putBlob(t testing.TB, s *store.Store, repo, content string) map[string]any {
	t.Helper()
	d := store.DigestOf(store.SHA256, []byte(content))
	if _, err := s.PutBlob(repo, d, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	return map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(content)}
}

// pushImage stores an image with a config unique to (repo, tag) and the
// given layers, under tag (by digest when tag is empty), and returns its
// manifest descriptor. subject, when set, makes it a referrer.
func pushImage(t testing.TB, s *store.Store, repo, tag string, subject map[string]any, layers ...string) map[string]any {
	t.Helper()
	config := putBlob(t, s, repo, fmt.Sprintf(`{"repo":%q,"tag":%q,"layers":%q}`, repo, tag, layers))
	config["mediaType"] = "application/vnd.oci.image.config.v1+json"
	m := map[string]any{"schemaVersion": 2, "mediaType": store.MediaTypeOCIManifest, "config": config, "layers": []any{}}
	for _, l := range layers {
		m["layers"] = append(m["layers"].([]any), putBlob(t, s, repo, l))
	}
	if subject != nil {
		m["subject"] = subject
		m["artifactType"] = "application/vnd.example.sbom"
	}
	return putManifest(t, s, repo, tag, store.MediaTypeOCIManifest, m)
}

// pushIndex stores an index of children under tag.
func pushIndex(t testing.TB, s *store.Store, repo, tag string, children ...map[string]any) map[string]any {
	t.Helper()
	m := map[string]any{"schemaVersion": 2, "mediaType": store.MediaTypeOCIIndex, "manifests": children}
	return putManifest(t, s, repo, tag, store.MediaTypeOCIIndex, m)
}

func putManifest(t testing.TB, s *store.Store, repo, tag, mediaType string, m map[string]any) map[string]any {
	t.Helper()
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := store.DigestOf(store.SHA256, body)
	ref := store.Reference{Tag: tag}
	if tag == "" {
		ref = store.Reference{Digest: d}
	}
	if _, _, err := s.PutManifest(repo, ref, nil, mediaType, body); err != nil {
		t.Fatalf("put manifest %s:%s: %v", repo, tag, err)
	}
	return map[string]any{"mediaType": mediaType, "digest": d, "size": len(body)}
}

// fillStore stores a multi-arch index whose images share a layer, an image
// in another repository sharing it too, and a referrer of one of them.
func fillStore(t testing.TB, s *store.Store) {
	t.Helper()
	amd := pushImage(t, s, "app", "", nil, "base layer", "amd64 layer")
	arm := pushImage(t, s, "app", "", nil, "base layer", "arm64 layer")
	pushIndex(t, s, "app", "v1", amd, arm)
	pushImage(t, s, "tools/cli", "latest", nil, "base layer", "cli layer")
	pushImage(t, s, "app", "", amd, "sbom of amd64")
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

// dumpStore renders every record of the stopped store in dir except upload
// sessions (a restore drops them) and the content of every blob file.
func dumpStore(t testing.TB, dir string) string {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer s.Close()
	var b strings.Builder
	err = s.DB().View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			if string(name) == "uploads" || string(name) == "uploadowners" {
				return nil
			}
			return bk.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&b, "%s %q %x\n", name, k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	tree := treeOf(t, filepath.Join(dir, "blobs"))
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if tree[k] != "dir" {
			fmt.Fprintf(&b, "file %s %s\n", k, tree[k])
		}
	}
	return b.String()
}

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
