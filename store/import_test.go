package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSource writes content as a file of a pretend source registry and
// returns its path and digest.
func writeSource(t *testing.T, dir, name string, content []byte) (string, Digest) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o444); err != nil {
		t.Fatal(err)
	}
	return path, DigestOf(SHA256, content)
}

func TestStore_StageBlobFile(t *testing.T) {
	t.Run("LinkedThenPlaced", func(t *testing.T) {
		s := mustOpen(t)
		src, d := writeSource(t, t.TempDir(), "data", []byte("a layer"))
		st, err := s.StageBlobFile(d, src, false)
		if err != nil {
			t.Fatal(err)
		}
		if st.How != BlobLinked || st.Size != 7 {
			t.Fatalf("staged %+v, want linked, 7 bytes", st)
		}
		if err := s.PlaceStagedBlobs("lib/a", []StagedBlob{st}); err != nil {
			t.Fatal(err)
		}
		theirs, _ := os.Stat(src)
		mine, err := os.Stat(s.BlobPath(d))
		if err != nil || !os.SameFile(theirs, mine) {
			t.Fatalf("the blob file is not a hard link of the source: %v", err)
		}
		if got := readBlob(t, s, "lib/a", d); string(got) != "a layer" {
			t.Fatalf("blob reads %q", got)
		}
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("the source file is gone: %v", err)
		}
	})
	t.Run("Copy", func(t *testing.T) {
		s := mustOpen(t)
		src, d := writeSource(t, t.TempDir(), "data", []byte("copied"))
		st, err := s.StageBlobFile(d, src, true)
		if err != nil || st.How != BlobCopied {
			t.Fatalf("StageBlobFile --copy: %+v, %v", st, err)
		}
		if err := s.PlaceStagedBlobs("lib/a", []StagedBlob{st}); err != nil {
			t.Fatal(err)
		}
		theirs, _ := os.Stat(src)
		mine, _ := os.Stat(s.BlobPath(d))
		if os.SameFile(theirs, mine) {
			t.Fatal("--copy made a hard link")
		}
	})
	t.Run("ErrDigestMismatch", func(t *testing.T) {
		s := mustOpen(t)
		src, _ := writeSource(t, t.TempDir(), "data", []byte("flipped"))
		_, err := s.StageBlobFile(DigestOf(SHA256, []byte("original")), src, false)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("corrupt source: %v, want ErrDigestMismatch", err)
		}
		if entries, _ := os.ReadDir(filepath.Join(s.Dir(), "uploads")); len(entries) != 0 {
			t.Fatalf("a corrupt blob left %d files in uploads", len(entries))
		}
	})
	t.Run("Missing", func(t *testing.T) {
		s := mustOpen(t)
		_, err := s.StageBlobFile(DigestOf(SHA256, []byte("x")), filepath.Join(t.TempDir(), "nope"), false)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("missing source: %v, want ErrNotExist", err)
		}
	})
}

func TestStore_LinkStoredBlobs(t *testing.T) {
	s := mustOpen(t)
	have := mustPutBlob(t, s, "lib/a", []byte("held"))
	absent := DigestOf(SHA256, []byte("not held"))
	linked, err := s.LinkStoredBlobs("lib/b", []Digest{have, absent})
	if err != nil {
		t.Fatal(err)
	}
	if len(linked) != 1 || linked[0] != have {
		t.Fatalf("linked %v, want only %s", linked, have)
	}
	if got := readBlob(t, s, "lib/b", have); string(got) != "held" {
		t.Fatalf("lib/b reads %q", got)
	}
}

func TestStore_ImportManifests(t *testing.T) {
	s := mustOpen(t)
	layer := mustPutBlob(t, s, "lib/a", []byte("layer"))
	cfg := mustPutBlob(t, s, "lib/a", []byte("{}"))
	lost := DigestOf(SHA256, []byte("lost layer"))
	manifest := func(layers ...Digest) ManifestImport {
		m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
			Config: &testDesc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfg, Size: 2}}
		for _, l := range layers {
			m.Layers = append(m.Layers, testDesc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: l, Size: 5})
		}
		body, _ := json.Marshal(m)
		return ManifestImport{Digest: DigestOf(SHA256, body), Body: body}
	}
	whole, broken := manifest(layer), manifest(layer, lost)
	idx := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []testDesc{
		{MediaType: MediaTypeOCIManifest, Digest: whole.Digest, Size: int64(len(whole.Body))},
		{MediaType: MediaTypeOCIManifest, Digest: broken.Digest, Size: int64(len(broken.Body))},
	}}
	idxBody, _ := json.Marshal(idx)
	index := ManifestImport{Digest: DigestOf(SHA256, idxBody), Body: idxBody, Tags: []string{"latest"}}
	sig := manifest()
	sig.Subject = whole.Digest // a cosign .sig: no subject in its body

	res, err := s.ImportManifests("lib/a", []ManifestImport{whole, broken, index, sig})
	if err != nil {
		t.Fatal(err)
	}
	wantBroken := []bool{false, true, true, false}
	for i, r := range res {
		if r.Broken != wantBroken[i] {
			t.Errorf("manifest %d: broken %v, want %v (missing %v)", i, r.Broken, wantBroken[i], r.Missing)
		}
	}
	if len(res[1].Missing) != 1 || res[1].Missing[0] != lost {
		t.Errorf("missing of the broken manifest: %v, want [%s]", res[1].Missing, lost)
	}
	if !hasManifest(t, s, "lib/a", whole.Digest) {
		t.Error("the whole manifest is not served")
	}
	for _, d := range []Digest{broken.Digest, index.Digest} {
		if hasManifest(t, s, "lib/a", d) || !s.IsManifestBroken("lib/a", d) {
			t.Errorf("%s: served or not marked broken", d)
		}
	}
	refs, err := s.Referrers("lib/a", whole.Digest, "", "", 100, 1<<20)
	if err != nil || len(refs.Digests) != 1 || refs.Digests[0] != sig.Digest {
		t.Errorf("referrers of the subject: %v, %v; want the signature", refs, err)
	}
	// Again: idempotent.
	if _, err := s.ImportManifests("lib/a", []ManifestImport{whole, broken, index, sig}); err != nil {
		t.Fatal(err)
	}
	if refs, _ := s.Referrers("lib/a", whole.Digest, "", "", 100, 1<<20); len(refs.Digests) != 1 {
		t.Errorf("after a second import, %d referrers", len(refs.Digests))
	}

	t.Run("SizeMismatchIsBroken", func(t *testing.T) {
		m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
			Config: &testDesc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfg, Size: 3}}
		body, _ := json.Marshal(m)
		res, err := s.ImportManifests("lib/a", []ManifestImport{{Digest: DigestOf(SHA256, body), Body: body}})
		if err != nil {
			t.Fatal(err)
		}
		if !res[0].Broken || res[0].SizeMismatch == nil || res[0].SizeMismatch.Digest != cfg {
			t.Fatalf("a config declared 3 bytes, stored 2: %+v", res[0])
		}
	})
	t.Run("ErrDigestMismatch", func(t *testing.T) {
		bad := manifest(layer)
		bad.Digest = lost
		if _, err := s.ImportManifests("lib/a", []ManifestImport{bad}); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("a body that does not hash to its digest: %v", err)
		}
	})
}

// A staged hard link carries its source's modification time, however old;
// a GC with no grace and no upload TTL running between staging and placing
// must leave it, or the import fails half-way.
func TestStore_StagedBlobSurvivesGC(t *testing.T) {
	s := mustOpen(t)
	src, d := writeSource(t, t.TempDir(), "data", []byte("an old layer"))
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	st, err := s.StageBlobFile(d, src, false)
	if err != nil || st.How != BlobLinked {
		t.Fatalf("StageBlobFile: %+v, %v", st, err)
	}
	if _, err := s.CollectGarbage(t.Context(), GCOptions{Grace: NoAge, UploadTTL: NoAge}); err != nil {
		t.Fatal(err)
	}
	if err := s.PlaceStagedBlobs("lib/a", []StagedBlob{st}); err != nil {
		t.Fatalf("placing after a gc: %v", err)
	}
	if got := readBlob(t, s, "lib/a", d); string(got) != "an old layer" {
		t.Fatalf("blob reads %q", got)
	}
	// Once placed, the name is no longer protected: nothing leaks.
	if _, held := s.staged.Load(filepath.Base(st.tmp)); held {
		t.Error("the staged name outlived its placement")
	}
}
