package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest  Digest
	Size    int64
	Created time.Time
}

// BlobPath returns where the file of d lives: DATA/blobs/<alg>/<first 2 hex>/<hex>.
func (s *Store) BlobPath(d Digest) string { return BlobPathIn(s.dir, d) }

// BlobPathIn is BlobPath for the data directory dir, which need not be
// open: a restore fills a directory before it opens it. It is the only
// place that knows the layout.
func BlobPathIn(dir string, d Digest) string {
	h := d.Hex()
	return filepath.Join(BlobsDir(dir), d.Algorithm(), h[:2], h)
}

// StatBlob returns the blob d if repo links it, else ErrBlobUnknown.
func (s *Store) StatBlob(repo string, d Digest) (BlobInfo, error) {
	var info BlobInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, err = linkedBlob(tx, repo, d)
		return err
	})
	return info, err
}

// OpenBlob returns n bytes (n < 0: all) from offset off of blob d, if repo
// links it, with the blob's record. A record whose bytes are missing is
// ErrBlobUnknown to the caller (a fault for verify). On the directory
// backend a whole blob is an *os.File (sendfile works) that stays readable
// after a concurrent delete, so a pull that started sees the whole blob.
// The caller closes the reader.
func (s *Store) OpenBlob(ctx context.Context, repo string, d Digest, off, n int64) (io.ReadCloser, BlobInfo, error) {
	ref, info, err := s.linkedRef(repo, d)
	if err != nil {
		return nil, info, err
	}
	r, err := s.blobs.Open(ctx, ref, off, n)
	return r, info, err
}

// BlobURL returns a URL that serves the bytes of blob d, if repo links it,
// valid for ttl, with the blob's record: a presigned GET on S3. It fails
// with ErrNotSupported when the blob store cannot hand out URLs (the
// directory).
func (s *Store) BlobURL(ctx context.Context, repo string, d Digest, ttl time.Duration) (string, BlobInfo, error) {
	if s.route.keyedStore() == nil {
		// Only the directory: no URLs, and no record read to say so.
		return "", BlobInfo{}, ErrNotSupported
	}
	var u URLer = s.route
	ref, info, err := s.linkedRef(repo, d)
	if err != nil {
		return "", info, err
	}
	url, err := u.URL(ctx, ref, ttl)
	return url, info, err
}

// linkedRef returns where blob d's bytes are and its record, if repo links
// it (else ErrBlobUnknown).
func (s *Store) linkedRef(repo string, d Digest) (ref BlobRef, info BlobInfo, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if info, err = linkedBlob(tx, repo, d); err != nil {
			return err
		}
		ref, err = blobRef(tx, d)
		return err
	})
	return ref, info, err
}

// storedRef returns where blob d's bytes are, from its record (else
// ErrBlobUnknown).
func (s *Store) storedRef(d Digest) (ref BlobRef, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		ref, err = blobRef(tx, d)
		return err
	})
	return ref, err
}

// StoredBlobSize returns the size of blob d's stored bytes (not its
// record's), or ErrBlobUnknown when it has no record or no bytes.
func (s *Store) StoredBlobSize(ctx context.Context, d Digest) (int64, error) {
	ref, err := s.storedRef(d)
	if err != nil {
		return 0, err
	}
	return s.blobs.Stat(ctx, ref)
}

// OpenStoredBlob returns the bytes of blob d from its record, whatever
// repository links it (backup, verify). ErrBlobUnknown when d has no record
// or its bytes are missing. The caller closes the reader.
func (s *Store) OpenStoredBlob(ctx context.Context, d Digest) (io.ReadCloser, error) {
	ref, err := s.storedRef(d)
	if err != nil {
		return nil, err
	}
	return s.blobs.Open(ctx, ref, 0, -1)
}

func linkedBlob(tx *bolt.Tx, repo string, d Digest) (BlobInfo, error) {
	if tx.Bucket(bucketLinks).Get(key(repo, string(d))) == nil {
		return BlobInfo{}, ErrBlobUnknown
	}
	return blobInfo(tx, d)
}

func blobInfo(tx *bolt.Tx, d Digest) (BlobInfo, error) {
	v := tx.Bucket(bucketBlobs).Get([]byte(d))
	if v == nil {
		return BlobInfo{}, ErrBlobUnknown
	}
	var rec blobRecord
	if err := decode(v, &rec); err != nil {
		return BlobInfo{}, fmt.Errorf("blob record %s: %w", d, err)
	}
	return BlobInfo{Digest: d, Size: rec.Size, Created: time.Unix(0, rec.Created)}, nil
}

// DeleteBlob removes repo's link to blob d, so the blob is no longer
// readable through repo. It returns ErrBlobUnknown when repo does not link d
// and ErrBlobInUse while a manifest of repo references it: deleting it then
// would leave that manifest unpullable. The file itself is removed by GC once
// no repository links it.
func (s *Store) DeleteBlob(repo string, d Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketLinks).Get(key(repo, string(d))) == nil {
			return ErrBlobUnknown
		}
		if hasPrefix(tx.Bucket(bucketRefs), prefix(repo, string(d))) {
			return ErrBlobInUse
		}
		return unlinkBlob(tx, repo, d)
	})
}

func unlinkBlob(tx *bolt.Tx, repo string, d Digest) error {
	if err := tx.Bucket(bucketLinks).Delete(key(repo, string(d))); err != nil {
		return err
	}
	return tx.Bucket(bucketBlobRepos).Delete(key(string(d), repo))
}

// linkBlob records that repo may serve d (which must have a blob record).
func linkBlob(tx *bolt.Tx, repo string, d Digest, now time.Time) error {
	if err := tx.Bucket(bucketLinks).Put(key(repo, string(d)), timeValue(now)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketBlobRepos).Put(key(string(d), repo), nil); err != nil {
		return err
	}
	return ensureRepo(tx, repo, now)
}

func ensureRepo(tx *bolt.Tx, repo string, now time.Time) error {
	b := tx.Bucket(bucketRepos)
	if b.Get([]byte(repo)) != nil {
		return nil
	}
	return b.Put([]byte(repo), timeValue(now))
}

// MountBlob links blob d, already linked in repository from, into repo
// without copying it. It returns ErrBlobUnknown when from does not link d;
// the caller then starts an ordinary upload, as the spec asks.
func (s *Store) MountBlob(repo, from string, d Digest) (BlobInfo, error) {
	var info BlobInfo
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if info, err = linkedBlob(tx, from, d); err != nil {
			return err
		}
		if err := s.checkQuotas(tx, repo, map[Digest]int64{d: info.Size}, 0); err != nil {
			return err
		}
		return linkBlob(tx, repo, d, s.now())
	})
	return info, err
}

// MountAnyBlob links blob d into repo from any repository for which
// readable returns true. It serves mount requests without a "from"
// parameter; readable keeps a caller from reaching blobs of repositories it
// may not pull. It returns ErrBlobUnknown when no readable repository links d.
// readable runs inside a read transaction and must not touch the store.
func (s *Store) MountAnyBlob(repo string, d Digest, readable func(repo string) bool) (BlobInfo, error) {
	var from string
	err := s.db.View(func(tx *bolt.Tx) error {
		p := prefix(string(d))
		c := tx.Bucket(bucketBlobRepos).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			if r := string(k[len(p):]); readable(r) {
				from = r
				return nil
			}
		}
		return ErrBlobUnknown
	})
	if err != nil {
		return BlobInfo{}, err
	}
	return s.MountBlob(repo, from, d)
}

// placeBlob places the verified staged blob b (the directory: moves its
// temp file into its final path) and records the blob and its link to
// repo. If the content is already stored the new copy is dropped. The
// digest lock keeps GC from removing the bytes between the existence check
// and the record.
func (s *Store) placeBlob(repo string, b StagedBlob) error {
	return s.placeBlobs(repo, []StagedBlob{b})
}

// placeBlobs is placeBlob for a set of verified temp files, sharing the
// directory syncs and the commit (with those of concurrent pushes too: see
// groupcommit.go). The digests' locks are held from the first rename to the
// commit, so GC cannot take a placed file for an orphan. On error, the
// files placed so far are complete and verified; a later push or import
// records them.
func (s *Store) placeBlobs(repo string, staged []StagedBlob) error {
	return s.placeBlobsAnd(repo, staged, nil)
}

// placeBlobsAnd is placeBlobs that also runs also (when not nil) in the
// transaction that records the blobs; also may run more than once.
func (s *Store) placeBlobsAnd(repo string, staged []StagedBlob, also func(tx *bolt.Tx) error) error {
	if len(staged) == 0 {
		return nil
	}
	// The time the upload was accepted, not that of the batch's commit: a
	// link is as fresh to GC as the push that made it.
	now := s.now()
	err := s.groupUpdate(staged, func(tx *bolt.Tx) error {
		if len(s.quotasOf(repo)) > 0 {
			sizes := make(map[Digest]int64, len(staged))
			for _, b := range staged {
				sizes[b.Digest] = b.Size
			}
			if err := s.checkQuotas(tx, repo, sizes, 0); err != nil {
				return err
			}
		}
		if err := recordBlobs(tx, repo, staged, now); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	s.route.settle(staged)
	if qe := (*QuotaError)(nil); errors.As(err, &qe) {
		s.dropUnrecorded(staged)
	}
	if err == nil {
		s.dropRedundant(staged)
	}
	return err
}

// dropUnrecorded removes the placed files of staged that no blob record
// names, after a refused commit: a push over quota leaves nothing on disk.
// The group commit has let go of the digests' locks by now: they are taken
// again, so no other commit places and records the same digest meanwhile.
func (s *Store) dropUnrecorded(staged []StagedBlob) {
	keys := make([]string, len(staged))
	for i, b := range staged {
		keys[i] = string(b.Digest)
	}
	unlock := s.digestLocks.lockAll(keys)
	defer unlock()
	var drop []StagedBlob
	s.db.View(func(tx *bolt.Tx) error {
		for _, b := range staged {
			if tx.Bucket(bucketBlobs).Get([]byte(b.Digest)) == nil {
				drop = append(drop, b)
			}
		}
		return nil
	})
	for _, b := range drop {
		if b.key != "" {
			s.blobs.Discard(context.Background(), b)
		} else {
			// The directory placed it at the digest's path.
			s.blobs.Delete(context.Background(), BlobRef{Digest: b.Digest})
		}
	}
}

// dropRedundant removes the objects of staged (a keyed blob store's) that
// did not become the record of their digest, after a commit: a second
// upload of a stored digest wrote an object of its own, which nothing
// names. On the directory the second copy was dropped at placement.
func (s *Store) dropRedundant(staged []StagedBlob) {
	var drop []StagedBlob
	s.db.View(func(tx *bolt.Tx) error {
		for _, b := range staged {
			if b.key == "" {
				continue
			}
			if ref, err := blobRef(tx, b.Digest); err != nil || ref.Key != b.key {
				drop = append(drop, b)
			}
		}
		return nil
	})
	for _, b := range drop {
		s.blobs.Discard(context.Background(), b)
	}
}

// recordBlobs records the blobs of staged (unless recorded) and links them
// in repo.
func recordBlobs(tx *bolt.Tx, repo string, staged []StagedBlob, now time.Time) error {
	blobs := tx.Bucket(bucketBlobs)
	for _, b := range staged {
		if blobs.Get([]byte(b.Digest)) == nil {
			v, err := encode(blobRecord{Size: b.Size, Created: now.UnixNano(), Key: b.key})
			if err != nil {
				return err
			}
			if err := blobs.Put([]byte(b.Digest), v); err != nil {
				return err
			}
		}
		if err := linkBlob(tx, repo, b.Digest, now); err != nil {
			return err
		}
	}
	return nil
}

// hasPrefix reports whether bucket b has any key starting with p.
func hasPrefix(b *bolt.Bucket, p []byte) bool {
	k, _ := b.Cursor().Seek(p)
	return k != nil && bytes.HasPrefix(k, p)
}
