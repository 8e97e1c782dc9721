package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// bbolt does not checksum its pages, so a manifest body that rotted or was
// swapped in meta.db would be served under its old digest, and a record
// whose reference lists no longer match its body would let GC delete the
// layers of a tagged image. These checks compare each stored manifest with
// itself: verify reports and repairs what they find, restore refuses it.

// manifestProblem checks manifest d as stored: its body hashes to d, and
// the record's media type and references are what the body says. It
// returns what is wrong ("" when nothing) and whether the body itself is
// damaged (it does not hash to d).
func manifestProblem(d Digest, rec manifestRecord, body []byte) (problem string, bodyBad bool) {
	if got := DigestOf(d.Algorithm(), body); got != d {
		return fmt.Sprintf("its body in meta.db hashes to %s: it is damaged or swapped", got), true
	}
	m, err := ParseManifest(rec.MediaType, body)
	if err != nil {
		return fmt.Sprintf("its body does not parse as %s: %v", rec.MediaType, err), false
	}
	var subject Digest
	if m.Subject != nil {
		subject = m.Subject.Digest
	}
	switch {
	case m.MediaType != rec.MediaType:
		return fmt.Sprintf("its record says media type %s, its body %s", rec.MediaType, m.MediaType), false
	case !slices.Equal(m.Blobs, rec.Blobs):
		return fmt.Sprintf("its record lists blobs %v, its body %v", rec.Blobs, m.Blobs), false
	case !slices.Equal(m.Children, rec.Children):
		return fmt.Sprintf("its record lists manifests %v, its body %v", rec.Children, m.Children), false
	case subject != "" && subject != rec.Subject:
		// A record may name a subject its body lacks: an import makes a
		// cosign or oras fallback-tag manifest a referrer that way
		// (ImportManifests). A body's own subject must be the record's.
		return fmt.Sprintf("its record names subject %q, its body %q", rec.Subject, subject), false
	}
	return "", false
}

// repairManifest fixes a corrupt manifest the way a corrupt blob is fixed:
// what cannot be trusted is put aside, and the manifest answers unknown
// until a push of the image stores it again. A damaged body is saved to
// DATA/quarantine/manifests and the manifest (and every index above it) is
// marked broken; its record stays, so GC keeps the blobs it lists. A record
// that disagrees with an intact body is rebuilt from the body, its refs and
// referrers entries with it, and the manifest is marked broken if the body
// lists content the repository lacks.
func (s *Store) repairManifest(repo string, d Digest) (string, error) {
	var value []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		value = bytes.Clone(tx.Bucket(bucketManifests).Get(key(repo, string(d))))
		return nil
	})
	if err != nil || value == nil {
		return "", err
	}
	rec, body, err := decodeManifest(value)
	if err != nil {
		return "", nil // an unreadable record is reported, not guessed at
	}
	problem, bodyBad := manifestProblem(d, rec, body)
	if problem == "" {
		return "", nil // healed since (a push stored it again)
	}
	if bodyBad {
		return s.quarantineManifest(repo, d, value, body)
	}
	m, err := ParseManifest(rec.MediaType, body)
	if err != nil {
		return "", nil // nothing to rebuild the record from; reported only
	}
	fixed := rec
	fixed.MediaType, fixed.ArtifactType, fixed.Annotations = m.MediaType, m.ArtifactType, m.Annotations
	fixed.Blobs, fixed.Children = m.Blobs, m.Children
	if m.Subject != nil { // else the record's subject stays: see manifestProblem
		fixed.Subject = m.Subject.Digest
	}
	newValue, err := encodeManifest(fixed, body)
	if err != nil {
		return "", err
	}
	missing := false
	changed := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		mk := key(repo, string(d))
		if !bytes.Equal(tx.Bucket(bucketManifests).Get(mk), value) {
			return nil // changed since it was read
		}
		changed = true
		if err := replaceManifestRecord(tx, repo, d, rec, fixed, newValue); err != nil {
			return err
		}
		if missing = lacksReferences(tx, repo, fixed); missing {
			return markManifestBroken(tx, repo, d)
		}
		return nil
	})
	if err != nil || !changed {
		return "", err
	}
	note := "its record rebuilt from its body"
	if missing {
		note += "; the body lists content " + repo + " lacks, so it answers unknown until the image is pushed again"
	}
	return note, nil
}

// quarantineManifest saves the damaged body of repo@d (as value holds it)
// under DATA/quarantine/manifests and marks the manifest broken, if it is
// still stored as value.
func (s *Store) quarantineManifest(repo string, d Digest, value, body []byte) (string, error) {
	dst := filepath.Join(s.dir, "quarantine", "manifests", d.Algorithm(), d.Hex())
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		dst += "." + s.now().UTC().Format("20060102T150405.000000000Z")
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("create quarantine: %w", err)
	}
	if err := os.WriteFile(dst, body, 0o600); err != nil {
		return "", fmt.Errorf("save the damaged manifest body: %w", err)
	}
	if err := OwnLike(s.dir, filepath.Join(s.dir, "quarantine")); err != nil {
		return "", err
	}
	marked := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if !bytes.Equal(tx.Bucket(bucketManifests).Get(key(repo, string(d))), value) {
			return nil
		}
		marked = true
		return markManifestBroken(tx, repo, d)
	})
	if err != nil || !marked {
		os.Remove(dst)
		return "", err
	}
	rel, _ := filepath.Rel(s.dir, dst)
	return "its body saved to " + filepath.ToSlash(rel) + "; it answers unknown until a push of the image stores it again", nil
}

// markManifestBroken marks repo@d and every manifest above it broken.
func markManifestBroken(tx *bolt.Tx, repo string, d Digest) error {
	if err := tx.Bucket(bucketBroken).Put(key(repo, string(d)), nil); err != nil {
		return err
	}
	return markBroken(tx, repo, d)
}

// replaceManifestRecord stores newValue (record fixed) for repo@d in place
// of one recorded as old, moving its refs and referrers entries along.
func replaceManifestRecord(tx *bolt.Tx, repo string, d Digest, old, fixed manifestRecord, newValue []byte) error {
	refs := tx.Bucket(bucketRefs)
	for _, t := range append(slices.Clone(old.Blobs), old.Children...) {
		if err := refs.Delete(key(repo, string(t), string(d))); err != nil {
			return err
		}
	}
	for _, t := range append(slices.Clone(fixed.Blobs), fixed.Children...) {
		if err := refs.Put(key(repo, string(t), string(d)), nil); err != nil {
			return err
		}
	}
	referrers := tx.Bucket(bucketReferrers)
	if old.Subject != "" {
		if err := referrers.Delete(key(repo, string(old.Subject), string(d))); err != nil {
			return err
		}
	}
	if fixed.Subject != "" {
		if err := referrers.Put(key(repo, string(fixed.Subject), string(d)), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketManifests).Put(key(repo, string(d)), newValue)
}

// lacksReferences reports whether repo misses a blob or child rec lists.
func lacksReferences(tx *bolt.Tx, repo string, rec manifestRecord) bool {
	links, manifests := tx.Bucket(bucketLinks), tx.Bucket(bucketManifests)
	for _, b := range rec.Blobs {
		if links.Get(key(repo, string(b))) == nil {
			return true
		}
	}
	for _, c := range rec.Children {
		if manifests.Get(key(repo, string(c))) == nil {
			return true
		}
	}
	return false
}
