package store

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testClock replaces Store.now so a test can age records without waiting.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func useClock(s *Store) *testClock {
	c := &testClock{t: time.Now()}
	s.now = c.Now
	return c
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testDesc and testManifest are the wire form of the manifests the GC
// tests push.
type testDesc struct {
	MediaType string `json:"mediaType"`
	Digest    Digest `json:"digest"`
	Size      int64  `json:"size"`
}

type testManifest struct {
	SchemaVersion int        `json:"schemaVersion"`
	MediaType     string     `json:"mediaType"`
	ArtifactType  string     `json:"artifactType,omitempty"`
	Config        *testDesc  `json:"config,omitempty"`
	Layers        []testDesc `json:"layers,omitempty"`
	Manifests     []testDesc `json:"manifests,omitempty"`
	Subject       *testDesc  `json:"subject,omitempty"`
}

// image is a pushed image: its manifest digest and its blobs (config
// first).
type image struct {
	Digest Digest
	Blobs  []Digest
}

// pushImage uploads a config unique to (repo, name) and layers with the
// given contents, then the manifest, by tag when tag is not empty, else by
// digest. subject, when not empty, makes it a referrer.
func pushImage(t testing.TB, s *Store, repo, name, tag string, subject Digest, layers ...string) image {
	t.Helper()
	cfg := []byte(fmt.Sprintf(`{"image":%q,"repo":%q}`, name, repo))
	img := image{Blobs: []Digest{mustPutBlob(t, s, repo, cfg)}}
	m := testManifest{
		SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
		Config: &testDesc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: img.Blobs[0], Size: int64(len(cfg))},
	}
	for _, l := range layers {
		d := mustPutBlob(t, s, repo, []byte(l))
		img.Blobs = append(img.Blobs, d)
		m.Layers = append(m.Layers, testDesc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: d, Size: int64(len(l))})
	}
	if subject != "" {
		m.ArtifactType = "application/vnd.example.signature"
		m.Subject = &testDesc{MediaType: MediaTypeOCIManifest, Digest: subject, Size: 1}
	}
	img.Digest = mustPutManifest(t, s, repo, tag, m)
	return img
}

// pushIndex pushes an index of children.
func pushIndex(t testing.TB, s *Store, repo, tag string, children ...Digest) Digest {
	t.Helper()
	m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []testDesc{}}
	for _, c := range children {
		child, err := s.Manifest(repo, Reference{Digest: c})
		if err != nil {
			t.Fatalf("child %s: %v", c, err)
		}
		m.Manifests = append(m.Manifests, testDesc{MediaType: MediaTypeOCIManifest, Digest: c, Size: child.Size})
	}
	return mustPutManifest(t, s, repo, tag, m)
}

func mustPutManifest(t testing.TB, s *Store, repo, tag string, m testManifest) Digest {
	t.Helper()
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference{Tag: tag}
	if tag == "" {
		ref = Reference{Digest: DigestOf(SHA256, body)}
	}
	stored, _, err := s.PutManifest(repo, ref, nil, m.MediaType, body)
	if err != nil {
		t.Fatalf("PutManifest %s:%s: %v", repo, ref, err)
	}
	return stored.Digest
}

// hasManifest reports whether repo holds manifest d.
func hasManifest(t testing.TB, s *Store, repo string, d Digest) bool {
	t.Helper()
	_, err := s.Manifest(repo, Reference{Digest: d})
	return err == nil
}

// hasBlobFile reports whether blob d has a record and a file.
func hasBlobFile(t testing.TB, s *Store, d Digest) bool {
	t.Helper()
	var recorded bool
	s.db.View(func(tx *bolt.Tx) error {
		recorded = tx.Bucket(bucketBlobs).Get([]byte(d)) != nil
		return nil
	})
	_, err := os.Stat(s.BlobPath(d))
	if recorded != (err == nil) {
		t.Fatalf("blob %s: record present %v, file present %v", d, recorded, err == nil)
	}
	return recorded
}

// dumpState renders every bucket and every file of the data directory, to
// show that something changed nothing.
func dumpState(t testing.TB, s *Store) string {
	t.Helper()
	var b strings.Builder
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				fmt.Fprintf(&b, "%s %q %s\n", name, k, hex.EncodeToString(v))
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"blobs", "uploads"} {
		filepath.WalkDir(filepath.Join(s.dir, dir), func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				info, _ := e.Info()
				fmt.Fprintf(&b, "file %s %d\n", path, info.Size())
			}
			return nil
		})
	}
	return b.String()
}

// checkInvariants fails the test unless the records agree with each other
// and with the files: what every GC interleaving must preserve.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	faults, err := s.CheckConsistency()
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) > 0 {
		t.Fatalf("store inconsistent:\n%s", strings.Join(faults, "\n"))
	}
}

// blobCount returns how many blob records the store has.
func blobCount(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketBlobs).Stats().KeyN
		return nil
	})
	return n
}
