package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// How an imported blob came into DATA (StagedBlob.How, and the importer's
// report).
const (
	BlobPresent = "present" // the store had it already: only linked into the repository
	BlobLinked  = "linked"  // hard-linked from the source: no bytes copied
	BlobCopied  = "copied"  // copied from the source (--copy, or another filesystem)
)

// HasBlob reports whether blob d is recorded and its bytes are in place, so
// an import can link it into another repository without reading the source.
func (s *Store) HasBlob(d Digest) bool {
	_, err := s.StoredBlobSize(context.Background(), d)
	return err == nil
}

// LinkStoredBlobs links into repo, in one transaction, those of ds that the
// store holds (recorded, file in place), and returns them; the others are
// left for the caller to bring in.
func (s *Store) LinkStoredBlobs(repo string, ds []Digest) ([]Digest, error) {
	var present []Digest
	for _, d := range ds {
		if s.HasBlob(d) {
			present = append(present, d)
		}
	}
	if len(present) == 0 {
		// No commit (and its fsync) for nothing: a mirror asks this before
		// every cold blob.
		return nil, nil
	}
	var linked []Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		linked = linked[:0]
		now := s.now()
		for _, d := range present {
			if tx.Bucket(bucketBlobs).Get([]byte(d)) == nil {
				continue
			}
			if err := linkBlob(tx, repo, d, now); err != nil {
				return err
			}
			linked = append(linked, d)
		}
		return nil
	})
	return linked, err
}

// StagedBlob is a source file hashed and verified by StageBlobFile, waiting
// in DATA/uploads to be placed by PlaceStagedBlobs.
type StagedBlob struct {
	Digest Digest
	Size   int64
	How    string // BlobLinked or BlobCopied
	tmp    string // the directory backend: the verified file in DATA/uploads
	key    string // a keyed backend (S3): the object that holds the bytes
}

// StageBlobFile readies the file src (a blob of another registry's storage)
// to become blob d: it hashes src, which must hash to d (else
// ErrDigestMismatch), and hard-links it into DATA/uploads, or copies it when
// copyFile is set or a link is impossible (another filesystem). src is only
// read, never changed or moved. Pass the result to PlaceStagedBlobs, or to
// DropStagedBlob when giving up.
func (s *Store) StageBlobFile(d Digest, src string, copyFile bool) (StagedBlob, error) {
	if NewHash(d.Algorithm()) == nil {
		return StagedBlob{}, fmt.Errorf("%w: %q", ErrDigestUnsupported, d.Algorithm())
	}
	if s.keyedBlobs() {
		// Another blob store: the bytes are written to it, hashed on the way.
		f, err := os.Open(src)
		if err != nil {
			return StagedBlob{}, fmt.Errorf("open %s: %w", src, err)
		}
		defer f.Close()
		st, err := s.blobs.Write(context.Background(), d, -1, f)
		st.How = BlobCopied
		return st, err
	}
	id, err := newUploadID()
	if err != nil {
		return StagedBlob{}, err
	}
	st := StagedBlob{Digest: d, How: BlobLinked, tmp: s.uploadPath(id)}
	if !copyFile {
		// Named before the link exists, so no GC can list the file
		// unprotected; a copy is new and needs no such care.
		s.staged.Store(id, struct{}{})
		st.Size, err = linkVerified(src, st.tmp, d)
		if err != nil {
			s.staged.Delete(id)
		}
		if errors.Is(err, errCannotLink) {
			copyFile = true
		} else if err != nil {
			return StagedBlob{}, err
		}
	}
	if copyFile {
		st.How = BlobCopied
		if st.tmp, st.Size, err = copyVerified(s.dir, src, d); err != nil {
			return StagedBlob{}, err
		}
	}
	return st, nil
}

// DropStagedBlob removes a staged blob's temp file.
func (s *Store) DropStagedBlob(b StagedBlob) {
	s.blobs.Discard(context.Background(), b)
	if b.tmp != "" {
		s.staged.Delete(filepath.Base(b.tmp))
	}
}

// PlaceStagedBlobs moves staged blobs into their final paths and records
// them, linked in repo, in one transaction: the steps of placeBlob, with the
// directory syncs and the commit shared by the whole set. The digests'
// locks are held from the first rename to the commit, so GC cannot take a
// placed file for an orphan. On error, the files placed so far are
// complete and verified; a later import or push records them.
func (s *Store) PlaceStagedBlobs(repo string, staged []StagedBlob) error {
	defer func() {
		for _, b := range staged {
			s.staged.Delete(filepath.Base(b.tmp))
		}
	}()
	return s.placeBlobs(repo, staged)
}

// errCannotLink says a hard link is impossible here; the caller copies.
var errCannotLink = errors.New("cannot hard-link")

// linkVerified hashes src, then hard-links it to tmp and checks that the
// link is the very file that was hashed, unchanged since. The link carries
// the source's old modification time, which is why StageBlobFile names it
// in s.staged for GC to pass over.
func linkVerified(src, tmp string, d Digest) (int64, error) {
	before, err := os.Stat(src)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	size, err := CheckBlobFile(src, d)
	if err != nil {
		return 0, err
	}
	if err := os.Link(src, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob %s: %w", d, err)
		}
		return 0, errCannotLink // EXDEV, EPERM, a filesystem without links
	}
	after, err := os.Stat(tmp)
	if err != nil || !os.SameFile(before, after) || after.Size() != size || !after.ModTime().Equal(before.ModTime()) {
		os.Remove(tmp)
		return 0, fmt.Errorf("blob %s: %s changed while it was imported", d, src)
	}
	// The source registry may not have synced it; an import must not lose
	// what it recorded on a crash.
	if f, err := os.Open(tmp); err == nil {
		err = f.Sync()
		f.Close()
		if err != nil {
			os.Remove(tmp)
			return 0, fmt.Errorf("sync blob %s: %w", d, err)
		}
	}
	return size, nil
}

// CheckBlobFile reads the file at path and checks that it hashes to d
// (else ErrDigestMismatch), returning its size: a dry-run import checks a
// source's blobs this way.
func CheckBlobFile(path string, d Digest) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	h := NewHash(d.Algorithm())
	n, err := io.CopyBuffer(h, f, make([]byte, copyBufferSize))
	if err != nil {
		return 0, fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := digestFromHash(d.Algorithm(), h); got != d {
		return 0, fmt.Errorf("%w: %s hashes to %s", ErrDigestMismatch, d, got)
	}
	return n, nil
}

// copyVerified copies src into a new file under dir's uploads, hashed on
// the way and synced (writeVerified, as for an upload), and returns the
// file's path and size; on any error the file is gone.
func copyVerified(dir, src string, d Digest) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("blob %s: %w", d, err)
	}
	defer in.Close()
	tmp, n, err := writeVerified(dir, d, -1, in)
	if err != nil {
		return "", 0, fmt.Errorf("blob %s from %s: %w", d, src, err)
	}
	return tmp, n, nil
}

// ManifestImport is one manifest for ImportManifests.
type ManifestImport struct {
	Digest    Digest // the digest the source knows it by; the body must hash to it
	MediaType string // the source's content type; "" to take it from the body
	Body      []byte
	Tags      []string
	// Subject makes the manifest a referrer of this digest when its body
	// names no subject: a cosign .sig tag or an entry of a referrers
	// fallback index.
	Subject Digest
}

// ImportedManifest is what ImportManifests did with one manifest.
type ImportedManifest struct {
	Digest Digest
	// Missing are the blobs repo does not link and the children it does not
	// hold; with any, or with a broken child, the manifest is recorded as
	// broken, as verify --repair marks one.
	Missing []Digest
	// SizeMismatch is a descriptor whose size is not that of the content
	// (clients refuse such a manifest on pull); it too makes the manifest
	// broken.
	SizeMismatch *SizeMismatchError
	Broken       bool
}

// ImportManifests records manifests of another registry in repo, in the
// order given (children before the indexes that list them), in one write
// transaction. Unlike PutManifest, a manifest whose blobs or children are
// missing is recorded anyway and marked broken: it answers
// ErrManifestUnknown until a push of it brings the missing content. Each
// body is parsed and must hash to its Digest; the first that does not fails
// the call and records nothing.
func (s *Store) ImportManifests(repo string, ms []ManifestImport) ([]ImportedManifest, error) {
	type prepared struct {
		rec   manifestRecord
		sizes map[Digest]int64
		value []byte
	}
	now := s.now()
	preps := make([]prepared, len(ms))
	for i, mi := range ms {
		m, err := ParseManifest(mi.MediaType, mi.Body)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", mi.Digest, err)
		}
		if got := DigestOf(mi.Digest.Algorithm(), mi.Body); got != mi.Digest {
			return nil, fmt.Errorf("%w: manifest %s hashes to %s", ErrDigestMismatch, mi.Digest, got)
		}
		rec := manifestRecord{
			MediaType: m.MediaType, ArtifactType: m.ArtifactType, Annotations: m.Annotations,
			Blobs: m.Blobs, Children: m.Children, Created: now.UnixNano(), Subject: mi.Subject,
		}
		if m.Subject != nil {
			rec.Subject = m.Subject.Digest
		}
		value, err := encodeManifest(rec, mi.Body)
		if err != nil {
			return nil, err
		}
		preps[i] = prepared{rec, m.Sizes, value}
	}
	out := make([]ImportedManifest, len(ms))
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, mi := range ms {
			res, err := importManifest(tx, repo, mi, preps[i].rec, preps[i].sizes, preps[i].value, now)
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func importManifest(tx *bolt.Tx, repo string, mi ManifestImport, rec manifestRecord, sizes map[Digest]int64, value []byte, now time.Time) (ImportedManifest, error) {
	res := ImportedManifest{Digest: mi.Digest, Missing: missingRefs(tx, repo, rec)}
	broken := tx.Bucket(bucketBroken)
	res.Broken = len(res.Missing) > 0
	if !res.Broken {
		var sm *SizeMismatchError
		if err := checkSizes(tx, repo, rec, sizes); errors.As(err, &sm) {
			res.SizeMismatch, res.Broken = sm, true
		} else if err != nil {
			return res, err
		}
	}
	for _, c := range rec.Children {
		if broken.Get(key(repo, string(c))) != nil {
			res.Broken = true
		}
	}
	if err := recordManifest(tx, repo, mi.Digest, rec, value, mi.Tags, now); err != nil {
		return res, err
	}
	if !res.Broken {
		return res, nil
	}
	// An empty, not a nil, value: within this transaction Get returns nil
	// for a key put with nil, and the next manifest of the batch must see
	// the mark.
	if err := broken.Put(key(repo, string(mi.Digest)), []byte{}); err != nil {
		return res, err
	}
	return res, markBroken(tx, repo, mi.Digest) // indexes recorded earlier that list it
}

// IsManifestBroken reports whether manifest d of repo is recorded and marked
// broken (a repair or an import found content of it missing).
func (s *Store) IsManifestBroken(repo string, d Digest) bool {
	var broken bool
	s.db.View(func(tx *bolt.Tx) error {
		broken = tx.Bucket(bucketBroken).Get(key(repo, string(d))) != nil
		return nil
	})
	return broken
}
