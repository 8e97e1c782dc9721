// Package storetest holds the helpers that tests of several packages
// repeat: a store in a temp dir that is checked when the test ends, images
// pushed straight into a store, and a buffer that goroutines may write to
// while a test reads it. It is for tests only (bbolt keeps its
// internal/btesting the same way).
package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/store"
)

// Open opens the data directory dir and, when the test ends, checks
// meta.db's pages and closes it. Closing it earlier (CheckClose) is fine.
func Open(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { CheckClose(t, s) })
	return s
}

// CheckClose checks meta.db's pages and closes s. A store closed already is
// left alone.
func CheckClose(t testing.TB, s *store.Store) {
	t.Helper()
	if err := s.CheckPages(); err != nil && !strings.Contains(err.Error(), "database not open") {
		t.Errorf("meta.db check: %v", err)
	}
	s.Close()
}

// Desc is a descriptor as manifests hold it.
type Desc = map[string]any

// PutBlob stores content as a layer blob linked in repo and returns its
// descriptor.
func PutBlob(t testing.TB, s *store.Store, repo, content string) Desc {
	t.Helper()
	d := store.DigestOf(store.SHA256, []byte(content))
	if _, err := s.PutBlob(repo, d, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatalf("put blob in %s: %v", repo, err)
	}
	return Desc{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(content)}
}

// PushImage stores an image with a config unique to (repo, tag, layers)
// and the given layers, under tag (by digest when tag is empty), and returns
// its manifest descriptor. subject, when not nil, makes it a referrer.
func PushImage(t testing.TB, s *store.Store, repo, tag string, subject Desc, layers ...string) Desc {
	t.Helper()
	config := PutBlob(t, s, repo, fmt.Sprintf(`{"repo":%q,"tag":%q,"layers":%q}`, repo, tag, layers))
	config["mediaType"] = "application/vnd.oci.image.config.v1+json"
	m := map[string]any{"schemaVersion": 2, "mediaType": store.MediaTypeOCIManifest, "config": config, "layers": []any{}}
	for _, l := range layers {
		m["layers"] = append(m["layers"].([]any), PutBlob(t, s, repo, l))
	}
	if subject != nil {
		m["subject"] = subject
		m["artifactType"] = "application/vnd.example.sbom"
	}
	return PutManifest(t, s, repo, tag, store.MediaTypeOCIManifest, m)
}

// PushIndex stores an index of children under tag.
func PushIndex(t testing.TB, s *store.Store, repo, tag string, children ...Desc) Desc {
	t.Helper()
	m := map[string]any{"schemaVersion": 2, "mediaType": store.MediaTypeOCIIndex, "manifests": children}
	return PutManifest(t, s, repo, tag, store.MediaTypeOCIIndex, m)
}

// PutManifest stores m under tag (by digest when tag is empty) and returns
// its descriptor.
func PutManifest(t testing.TB, s *store.Store, repo, tag, mediaType string, m map[string]any) Desc {
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
	return Desc{"mediaType": mediaType, "digest": d, "size": len(body)}
}

// Digest returns the digest of a descriptor.
func Digest(d Desc) store.Digest { return d["digest"].(store.Digest) }

// SyncBuffer is a bytes.Buffer safe for concurrent use: a server or a child
// process writes from its own goroutines while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Dump renders every record of the stopped store in dir except upload
// sessions and their index (a restore drops them) and the history of gc
// runs and backups, then every file under DATA/blobs with
// its sha256: two stores with equal dumps hold the same registry.
func Dump(t testing.TB, dir string) string {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer s.Close()
	var b strings.Builder
	err = s.Records(func(bucket string, k, v []byte) error {
		// The history of gc runs and backups is a log of operations, not
		// content: a backup's own record is written after its snapshot, so
		// a restore never holds the last one.
		if bucket != "uploads" && bucket != "uploadowners" && bucket != "history" {
			fmt.Fprintf(&b, "%s %q %x\n", bucket, k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	root := store.BlobsDir(dir)
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(&b, "file %s %x\n", filepath.ToSlash(rel), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
