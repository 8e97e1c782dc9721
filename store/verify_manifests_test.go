package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storedValue returns the meta.db value of repo@d, decoded.
func storedValue(t *testing.T, s *Store, repo string, d Digest) (manifestRecord, []byte) {
	t.Helper()
	var rec manifestRecord
	var body []byte
	s.db.View(func(tx *bolt.Tx) error {
		r, b, err := decodeManifest(tx.Bucket(bucketManifests).Get(key(repo, string(d))))
		if err != nil {
			t.Fatal(err)
		}
		rec, body = r, slices.Clone(b)
		return nil
	})
	return rec, body
}

func putStoredValue(t *testing.T, s *Store, repo string, d Digest, rec manifestRecord, body []byte) {
	t.Helper()
	v, err := encodeManifest(rec, body)
	if err != nil {
		t.Fatal(err)
	}
	dbPut(t, s, bucketManifests, key(repo, string(d)), v)
}

// TestStore_VerifyManifestBodySwap swaps the body of one tagged manifest for
// another's in meta.db: verify reports it, restore's check refuses it, and
// repair saves the body aside and makes the manifest unknown, so a pull
// fails instead of getting the wrong image and a re-push heals it.
func TestStore_VerifyManifestBodySwap(t *testing.T) {
	f := newVerifyFixture(t)
	s := f.s
	rec, _ := storedValue(t, s, "app", f.amd64.Digest)
	_, otherBody := storedValue(t, s, "app", f.arm64.Digest)
	putStoredValue(t, s, "app", f.amd64.Digest, rec, otherBody)

	r := mustVerify(t, s, VerifyOptions{})
	if got, want := faultKeys(r), []string{"corrupt manifest app@" + string(f.amd64.Digest)}; !slices.Equal(got, want) {
		t.Fatalf("faults = %q, want %q", got, want)
	}
	if got, want := r.Faults[0].Images, []string{"app:v1"}; !slices.Equal(got, want) {
		t.Errorf("images = %q, want %q", got, want)
	}
	if faults, err := s.CheckConsistency(); err != nil || len(faults) != 1 {
		t.Errorf("CheckConsistency = %q, %v; want the swapped body", faults, err)
	}

	r = mustVerify(t, s, VerifyOptions{Repair: true})
	if r.Faults[0].Repaired == "" {
		t.Fatalf("repair did nothing: %+v", r.Faults[0])
	}
	saved, err := os.ReadFile(filepath.Join(s.Dir(), "quarantine", "manifests", "sha256", f.amd64.Digest.Hex()))
	if err != nil || string(saved) != string(otherBody) {
		t.Errorf("quarantined body = %q, %v", saved, err)
	}
	if _, err := s.Manifest("app", Reference{Digest: f.amd64.Digest}); !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("GET of the repaired manifest: %v, want ErrManifestUnknown", err)
	}
	if _, err := s.Manifest("app", Reference{Tag: "v1"}); !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("GET of the index above it: %v, want ErrManifestUnknown", err)
	}
	// A re-push of the image heals it.
	f.amd64 = pushImage(t, s, "app", "amd64", "", "", "shared layer", "amd64 layer")
	pushIndex(t, s, "app", "v1", f.amd64.Digest, f.arm64.Digest)
	if r := mustVerify(t, s, VerifyOptions{}); len(r.Faults) != 0 {
		t.Errorf("after the re-push: %q", faultKeys(r))
	}
}

// TestStore_VerifyManifestRecordMismatch drops a layer from a tagged
// manifest's record: GC would delete that layer. Verify reports it, repair
// rebuilds the record from the body, and GC then keeps the layer.
func TestStore_VerifyManifestRecordMismatch(t *testing.T) {
	f := newVerifyFixture(t)
	s := f.s
	rec, body := storedValue(t, s, "tools", f.plain.Digest)
	rec.Blobs = slices.DeleteFunc(slices.Clone(rec.Blobs), func(d Digest) bool { return d == f.lone })
	putStoredValue(t, s, "tools", f.plain.Digest, rec, body)
	dbDelete(t, s, bucketRefs, key("tools", string(f.lone), string(f.plain.Digest)))

	r := mustVerify(t, s, VerifyOptions{})
	if got, want := faultKeys(r), []string{"corrupt manifest tools@" + string(f.plain.Digest)}; !slices.Equal(got, want) {
		t.Fatalf("faults = %q, want %q", got, want)
	}
	r = mustVerify(t, s, VerifyOptions{Repair: true})
	if r.Faults[0].Repaired != "its record rebuilt from its body" {
		t.Errorf("repaired = %q", r.Faults[0].Repaired)
	}
	if r := mustVerify(t, s, VerifyOptions{}); len(r.Faults) != 0 {
		t.Errorf("after repair: %q", faultKeys(r))
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := s.CollectGarbage(context.Background(), GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if !hasBlobFile(t, s, f.lone) {
		t.Errorf("gc deleted layer %s of the tagged image tools:latest", f.lone)
	}
	if _, err := s.Manifest("tools", Reference{Tag: "latest"}); err != nil {
		t.Errorf("tools:latest after repair: %v", err)
	}
}
