package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Verify and repair on a keyed blob store (S3): a blob's bytes are the
// object its record names, hashed by streaming it from the store.

// checkBlobObject hashes the object ref of blob b and returns its fault,
// if any.
func (s *Store) checkBlobObject(ctx context.Context, b BlobInfo, ref BlobRef, buf []byte, report func(int64)) (*Fault, error) {
	r, err := s.blobs.Open(ctx, ref, 0, -1)
	if errors.Is(err, ErrBlobUnknown) {
		if !s.recordWithoutObject(ctx, ref) {
			return nil, nil
		}
		return &Fault{Kind: FaultMissingBlob, Subject: string(b.Digest), blob: b.Digest, object: ref,
			Problem: fmt.Sprintf("has a record (%d bytes) but no object %s", b.Size, ref.Key)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", b.Digest, err)
	}
	defer r.Close()
	var n int64
	got, err := hashStream(ctx, r, b.Digest, buf, func(k int64) { n += k; report(k) })
	if err != nil {
		return nil, err
	}
	fault := &Fault{Kind: FaultCorruptBlob, Subject: string(b.Digest), blob: b.Digest, object: ref}
	switch {
	case n != b.Size:
		fault.Problem = fmt.Sprintf("the object has %d bytes, the record says %d", n, b.Size)
	case got != b.Digest:
		fault.Problem = "its content hashes to " + string(got)
	default:
		return nil, nil
	}
	return fault, nil
}

// recordWithoutObject reports whether ref is still the record of its
// digest and its object is missing, looked at under the digest's lock (GC
// deletes the record, then the object, holding it).
func (s *Store) recordWithoutObject(ctx context.Context, ref BlobRef) bool {
	unlock := s.lockDigest(ref.Digest)
	defer unlock()
	if now, err := s.storedRef(ref.Digest); err != nil || now != ref {
		return false
	}
	_, err := s.blobs.Stat(ctx, ref)
	return errors.Is(err, ErrBlobUnknown)
}

// quarantineObject forgets the blob whose object ref is corrupt, if ref is
// still its record, and moves the object's bytes to DATA/quarantine: copied
// there, then removed from the store. The record goes first (the usual
// order): a re-push writes an object of its own, so nothing can take the
// corrupt object for the blob, and if the copy fails the object is left for
// GC, as an orphan.
func (s *Store) quarantineObject(ref BlobRef) (string, error) {
	ctx := context.Background()
	unlock := s.lockDigest(ref.Digest)
	forgot := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		now, err := blobRef(tx, ref.Digest)
		if err != nil || now != ref {
			return nil // collected or replaced since it was hashed
		}
		forgot = true
		return forgetBlob(tx, ref.Digest)
	})
	unlock()
	if err != nil || !forgot {
		return "", err
	}
	dst := s.quarantinePath(ref.Digest)
	if err := s.copyObjectTo(ctx, ref, dst); err != nil {
		return "its record and links removed; the object " + ref.Key + " stays for gc (" + err.Error() + ")" + repushNote, nil
	}
	if err := s.blobs.Delete(ctx, ref); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(s.dir, dst)
	if err != nil {
		rel = dst
	}
	return "object " + ref.Key + " moved to " + filepath.ToSlash(rel) + ", its record and links removed" + repushNote, nil
}

// copyObjectTo writes the bytes of ref to the new file dst, synced.
func (s *Store) copyObjectTo(ctx context.Context, ref BlobRef, dst string) (err error) {
	if err := mkdirSynced(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("create quarantine: %w", err)
	}
	if err := OwnLike(s.dir, filepath.Join(s.dir, quarantineDir)); err != nil {
		return err
	}
	r, err := s.blobs.Open(ctx, ref, 0, -1)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(dst)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(dst))
}

// forgetMissingObject forgets the blob whose object ref is missing, if ref
// is still its record and the object still missing.
func (s *Store) forgetMissingObject(ref BlobRef) (string, error) {
	unlock := s.lockDigest(ref.Digest)
	defer unlock()
	if _, err := s.blobs.Stat(context.Background(), ref); !errors.Is(err, ErrBlobUnknown) {
		return "", nil
	}
	forgot := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		now, err := blobRef(tx, ref.Digest)
		if err != nil || now != ref {
			return nil
		}
		forgot = true
		return forgetBlob(tx, ref.Digest)
	})
	if err != nil || !forgot {
		return "", err
	}
	return "its record and links removed" + repushNote, nil
}

// objectDebris reports what GC would remove from an object store: objects
// no record holds and multipart uploads no session holds, older than
// cutoff.
func (s *Store) objectDebris(ctx context.Context, cutoff time.Time) ([]Fault, error) {
	objects, sessions, err := s.findOrphanObjects(ctx, cutoff)
	var faults []Fault
	for _, o := range objects {
		if s.route.inFlight(o.ref.Key) {
			continue
		}
		faults = append(faults, Fault{Kind: FaultDebris, Subject: o.ref.Key,
			Problem: fmt.Sprintf("an object of %d bytes that no record knows: gc removes it", o.size)})
	}
	for _, ss := range sessions {
		faults = append(faults, Fault{Kind: FaultDebris, Subject: ss.Name,
			Problem: "no upload session holds it: gc aborts it"})
	}
	return faults, err
}
