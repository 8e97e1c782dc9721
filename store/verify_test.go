package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// verifyFixture is a store holding a multi-arch index and a plain image
// that share a layer, with the digests the cases break.
type verifyFixture struct {
	s            *Store
	amd64, arm64 image
	plain        image
	index        Digest
	shared, lone Digest // a layer all images share; one only plain has
	clock        *testClock
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	s := mustOpen(t)
	f := &verifyFixture{s: s, clock: useClock(s)}
	f.amd64 = pushImage(t, s, "app", "amd64", "", "", "shared layer", "amd64 layer")
	f.arm64 = pushImage(t, s, "app", "arm64", "", "", "shared layer", "arm64 layer")
	f.index = pushIndex(t, s, "app", "v1", f.amd64.Digest, f.arm64.Digest)
	f.plain = pushImage(t, s, "tools", "plain", "latest", "", "shared layer", "tools layer")
	f.shared, f.lone = f.plain.Blobs[1], f.plain.Blobs[2]
	return f
}

// faultKeys renders the faults as "kind subject" lines, sorted.
func faultKeys(r VerifyReport) []string {
	var out []string
	for _, f := range r.Faults {
		out = append(out, string(f.Kind)+" "+f.Subject)
	}
	return out
}

func mustVerify(t *testing.T, s *Store, opts VerifyOptions) VerifyReport {
	t.Helper()
	r, err := s.Verify(context.Background(), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStore_Verify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, f *verifyFixture) // damages the store
		want   []string                             // "kind subject" of every fault
		images map[string][]string                  // subject → the images its fault lists
	}{
		{name: "Clean", break_: func(*testing.T, *verifyFixture) {}},
		{
			name:   "FlippedByte",
			break_: func(t *testing.T, f *verifyFixture) { flipByte(t, f.s.BlobPath(f.shared)) },
			want:   []string{"corrupt blob " + "SHARED"},
			images: map[string][]string{"SHARED": {"app:v1", "tools:latest"}},
		},
		{
			name: "ShortFile",
			break_: func(t *testing.T, f *verifyFixture) {
				os.Truncate(f.s.BlobPath(f.lone), 3)
			},
			want:   []string{"corrupt blob LONE"},
			images: map[string][]string{"LONE": {"tools:latest"}},
		},
		{
			name:   "MissingFile",
			break_: func(t *testing.T, f *verifyFixture) { os.Remove(f.s.BlobPath(f.amd64.Blobs[2])) },
			want:   []string{"missing blob AMD64LAYER"},
			images: map[string][]string{"AMD64LAYER": {"app:v1"}},
		},
		{
			name: "DanglingTag",
			break_: func(t *testing.T, f *verifyFixture) {
				dbPut(t, f.s, bucketTags, key("tools", "old"), []byte(DigestOf(SHA256, []byte("gone"))))
			},
			want:   []string{"dangling tag tools:old"},
			images: map[string][]string{"tools:old": {"tools:old"}},
		},
		{
			name: "IndexChildGone",
			break_: func(t *testing.T, f *verifyFixture) {
				dbDelete(t, f.s, bucketManifests, key("app", string(f.arm64.Digest)))
			},
			want: []string{
				"broken manifest app@INDEX",
				"index refs entry \"app ARM64CONFIG ARM64\"",
				"index refs entry \"app ARM64LAYER ARM64\"",
				"index refs entry \"app SHARED ARM64\"",
			},
			images: map[string][]string{"app@INDEX": {"app:v1"}},
		},
		{
			name: "LinkWithoutRecord",
			break_: func(t *testing.T, f *verifyFixture) {
				dbDelete(t, f.s, bucketBlobs, []byte(f.lone))
				f.clock.Advance(DefaultGrace + time.Minute) // its file is now old debris
			},
			want: []string{"missing blob LONE", "debris " + "blobs/sha256/LONEFILE"},
		},
		{
			name: "UploadDebris",
			break_: func(t *testing.T, f *verifyFixture) {
				if _, err := f.s.StartUpload("app", "", 0); err != nil {
					t.Fatal(err)
				}
				gone, err := f.s.StartUpload("app", "", 0)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(f.s.uploadPath(gone.ID))
				f.clock.Advance(DefaultUploadTTL + time.Hour)
			},
			want: []string{"debris upload IDLE", "debris upload GONE"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newVerifyFixture(t)
			tc.break_(t, f)
			r := mustVerify(t, f.s, VerifyOptions{})
			names := f.names(t)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = names.Replace(w)
			}
			got := faultKeys(r)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("faults:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			for subject, images := range tc.images {
				subject = names.Replace(subject)
				i := slices.IndexFunc(r.Faults, func(f Fault) bool { return f.Subject == subject })
				if i < 0 || !slices.Equal(r.Faults[i].Images, images) {
					t.Errorf("%s: images %v, want %v", subject, r.Faults[i].Images, images)
				}
			}
			if r.Blobs == 0 || r.Manifests == 0 {
				t.Errorf("checked %d blobs and %d manifests", r.Blobs, r.Manifests)
			}
		})
	}
}

// names replaces the placeholders of the cases with the fixture's digests
// and upload ids.
func (f *verifyFixture) names(t *testing.T) *strings.Replacer {
	t.Helper()
	var idle, gone string
	f.s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, _ []byte) error {
			if _, err := os.Stat(f.s.uploadPath(string(k))); err == nil {
				idle = string(k)
			} else {
				gone = string(k)
			}
			return nil
		})
	})
	return strings.NewReplacer(
		"SHARED", string(f.shared), "LONEFILE", f.lone.Hex()[:2]+"/"+f.lone.Hex(), "LONE", string(f.lone),
		"AMD64LAYER", string(f.amd64.Blobs[2]), "ARM64LAYER", string(f.arm64.Blobs[2]),
		"ARM64CONFIG", string(f.arm64.Blobs[0]), "ARM64", string(f.arm64.Digest),
		"INDEX", string(f.index), "IDLE", idle, "GONE", gone,
	)
}

func dbPut(t *testing.T, s *Store, bucket, k, v []byte) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(k, v) }); err != nil {
		t.Fatal(err)
	}
}

func dbDelete(t *testing.T, s *Store, bucket, k []byte) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete(k) }); err != nil {
		t.Fatal(err)
	}
}

// TestStore_VerifyRepair breaks a blob, loses another and leaves a tag
// dangling; a repair quarantines and forgets the blobs, verify then names
// the images to re-push, and re-pushing them makes verify clean.
func TestStore_VerifyRepair(t *testing.T) {
	f := newVerifyFixture(t)
	s := f.s
	amd64Layer := f.amd64.Blobs[2]
	flipByte(t, s.BlobPath(f.shared))
	corrupt, _ := os.ReadFile(s.BlobPath(f.shared))
	os.Remove(s.BlobPath(amd64Layer))
	dbPut(t, s, bucketTags, key("tools", "old"), []byte(f.amd64.Digest))

	r := mustVerify(t, s, VerifyOptions{Repair: true})
	if got := r.Repaired(); got != 2 {
		t.Fatalf("repaired %d faults, want 2 (the corrupt and the missing blob):\n%v", got, r.Faults)
	}
	quarantined := filepath.Join(s.Dir(), "quarantine", "sha256", f.shared.Hex())
	if b, err := os.ReadFile(quarantined); err != nil || !bytes.Equal(b, corrupt) {
		t.Errorf("quarantine holds %q (%v), want the corrupt file", b, err)
	}
	if _, _, err := s.OpenBlob(context.Background(), "tools", f.shared, 0, -1); !errors.Is(err, ErrBlobUnknown) {
		t.Errorf("OpenBlob of the quarantined blob: %v, want ErrBlobUnknown", err)
	}

	// Until they are whole again, the broken manifests are unknown to a
	// client, so that it pushes them again.
	for _, ref := range []struct{ repo, tag string }{{"app", "v1"}, {"tools", "latest"}} {
		if _, err := s.Manifest(ref.repo, Reference{Tag: ref.tag}); !errors.Is(err, ErrManifestUnknown) {
			t.Errorf("Manifest %s:%s after repair: %v, want ErrManifestUnknown", ref.repo, ref.tag, err)
		}
	}
	if _, err := s.Manifest("app", Reference{Digest: f.amd64.Digest}); !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("Manifest of the broken amd64 image: %v, want ErrManifestUnknown", err)
	}

	r = mustVerify(t, s, VerifyOptions{})
	var needRepush []string
	for _, f := range r.Faults {
		if f.Kind == FaultBrokenManifest {
			needRepush = append(needRepush, f.Images...)
		}
	}
	slices.Sort(needRepush)
	// amd64 lost two blobs, arm64 and the tools image one each.
	if want := []string{"app:v1", "app:v1", "app:v1", "tools:latest"}; !slices.Equal(needRepush, want) {
		t.Errorf("images to re-push %v, want %v (faults: %v)", needRepush, want, faultKeys(r))
	}

	// What a client's re-push does: upload the blobs the registry says it
	// lacks, put the manifests again.
	pushImage(t, s, "app", "amd64", "", "", "shared layer", "amd64 layer")
	pushImage(t, s, "app", "arm64", "", "", "shared layer", "arm64 layer")
	pushIndex(t, s, "app", "v1", f.amd64.Digest, f.arm64.Digest)
	pushImage(t, s, "tools", "plain", "latest", "", "shared layer", "tools layer")
	dbDelete(t, s, bucketTags, key("tools", "old"))
	if r := mustVerify(t, s, VerifyOptions{}); len(r.Faults) != 0 {
		t.Fatalf("after re-push: %v", faultKeys(r))
	}
	for _, ref := range []struct{ repo, tag string }{{"app", "v1"}, {"tools", "latest"}} {
		if _, err := s.Manifest(ref.repo, Reference{Tag: ref.tag}); err != nil {
			t.Errorf("Manifest %s:%s after the re-push: %v", ref.repo, ref.tag, err)
		}
	}
	checkInvariants(t, s)
}

// TestStore_VerifyDuringGC runs verify while GC removes blobs: a blob that
// goes away under verify is not a fault.
func TestStore_VerifyDuringGC(t *testing.T) {
	s := mustOpen(t)
	for i := range 300 {
		mustPutBlob(t, s, "junk", []byte(strings.Repeat("x", 20000+i)))
	}
	pushImage(t, s, "app", "keep", "v1", "", "kept layer")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.CollectGarbage(context.Background(), GCOptions{Grace: NoAge}); err != nil {
			t.Errorf("gc: %v", err)
		}
	}()
	var faults []Fault
	for range 5 {
		r, err := s.Verify(context.Background(), VerifyOptions{})
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
		faults = append(faults, r.Faults...)
	}
	wg.Wait()
	if len(faults) != 0 {
		t.Fatalf("verify during gc found faults: %v", faults)
	}
}
