package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Orphan files are files no record knows: a blob file whose record was
// deleted just before a crash, an upload file whose session record never
// got written or was already deleted. Files in DATA/blobs that do not have
// the name of a blob (alg/ab/abcd…) are not berth's and are left alone.

// orphanFile is a file that, when last looked at, had no record and was
// older than its cutoff. key is the digest or the upload id.
type orphanFile struct {
	key  string
	path string
	size int64
}

type orphans struct {
	blobs   []orphanFile
	uploads []orphanFile
	dir     string
}

func (o orphans) report() []RemovedFile {
	var out []RemovedFile
	for _, f := range append(append([]orphanFile(nil), o.blobs...), o.uploads...) {
		out = append(out, relFile(o.dir, f))
	}
	return out
}

func relFile(dir string, f orphanFile) RemovedFile {
	rel, err := filepath.Rel(dir, f.path)
	if err != nil {
		rel = f.path
	}
	return RemovedFile{Path: filepath.ToSlash(rel), Size: f.size}
}

// findOrphanFiles lists blob files modified before blobCutoff and upload
// files modified before uploadCutoff that have no record.
func (s *Store) findOrphanFiles(blobCutoff, uploadCutoff time.Time) (orphans, error) {
	o := orphans{dir: s.dir}
	blobs, err := s.oldBlobFiles(blobCutoff)
	if err != nil {
		return o, err
	}
	uploads, err := s.oldUploadFiles(uploadCutoff)
	if err != nil {
		return o, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		o.blobs = unrecorded(tx.Bucket(bucketBlobs), blobs)
		o.uploads = unrecorded(tx.Bucket(bucketUploads), uploads)
		return nil
	})
	return o, err
}

func unrecorded(b *bolt.Bucket, files []orphanFile) []orphanFile {
	var out []orphanFile
	for _, f := range files {
		if !recordsFile(b, f.key) {
			out = append(out, f)
		}
	}
	return out
}

// recordsFile reports whether bucket b (blobs or uploads) has a record
// that the file named key belongs to. A blob record whose bytes are an
// object of a keyed blob store does not: its file in DATA/blobs is what a
// migration left behind.
func recordsFile(b *bolt.Bucket, key string) bool {
	v := b.Get([]byte(key))
	if v == nil || !recordHasKey(v) {
		return v != nil
	}
	var rec blobRecord
	return decode(v, &rec) != nil || rec.Key == ""
}

// oldBlobFiles walks DATA/blobs/<alg>/<ab>/<abcd…> for blob files modified
// before cutoff.
func (s *Store) oldBlobFiles(cutoff time.Time) ([]orphanFile, error) {
	root := BlobsDir(s.dir)
	var out []orphanFile
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		d, ok := s.blobAt(path)
		if !ok {
			return nil
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			out = append(out, orphanFile{key: string(d), path: path, size: info.Size()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk blob files: %w", err)
	}
	return out, nil
}

// blobAt returns the digest whose file path is, if it is one.
func (s *Store) blobAt(path string) (Digest, bool) {
	alg := filepath.Base(filepath.Dir(filepath.Dir(path)))
	d, err := ParseDigest(alg + ":" + filepath.Base(path))
	if err != nil || s.BlobPath(d) != path {
		return "", false
	}
	return d, true
}

// oldUploadFiles lists the files in DATA/uploads named like upload
// sessions and modified before cutoff.
func (s *Store) oldUploadFiles(cutoff time.Time) ([]orphanFile, error) {
	dir := UploadsDir(s.dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list upload files: %w", err)
	}
	var out []orphanFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !ValidUploadID(e.Name()) {
			continue
		}
		if _, importing := s.staged.Load(e.Name()); importing {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			out = append(out, orphanFile{key: e.Name(), path: filepath.Join(dir, e.Name()), size: info.Size()})
		}
	}
	return out, nil
}

// sweepFiles removes the orphan files. Blob files need the grace period
// (and the digest lock, which placeBlob holds from its existence check to
// its record); upload files also the upload TTL: a monolithic upload's temp
// file has no session record while its body streams in, and is fresh only
// while bytes arrive.
func (s *Store) sweepFiles(ctx context.Context, r *GCReport, opts GCOptions, now time.Time) error {
	blobCutoff := now.Add(-opts.grace())
	uploadCutoff := now.Add(-max(opts.grace(), opts.uploadTTL()))
	o, err := s.findOrphanFiles(blobCutoff, uploadCutoff)
	if err != nil {
		return fmt.Errorf("gc files: %w", err)
	}
	total := len(o.blobs) + len(o.uploads)
	done := 0
	for _, set := range []struct {
		files  []orphanFile
		lock   lockKeys
		bucket []byte
		cutoff time.Time
	}{
		{o.blobs, s.lockDigests, bucketBlobs, blobCutoff},
		{o.uploads, s.uploads.tryLockAll, bucketUploads, uploadCutoff},
	} {
		for start := 0; start < len(set.files); start += gcBatch {
			if err := checkContext(ctx, "files"); err != nil {
				return err
			}
			started := time.Now()
			batch := set.files[start:min(start+gcBatch, len(set.files))]
			removed, err := s.removeOrphans(batch, set.lock, set.bucket, set.cutoff)
			if err != nil {
				return fmt.Errorf("gc files: %w", err)
			}
			for _, f := range removed {
				r.Files = append(r.Files, relFile(s.dir, f))
			}
			done += len(batch)
			opts.progress("files", done, total)
			if done < total {
				gcYield(ctx, started)
			}
		}
	}
	return nil
}

// lockKeys locks the keys it can (digest locks: all, waiting; session
// locks: the free ones) and returns those it holds and their unlock.
type lockKeys func(keys []string) (held []string, unlock func())

// lockDigests waits for the digest locks of keys, taken in sorted order.
func (s *Store) lockDigests(keys []string) ([]string, func()) {
	return keys, s.digestLocks.lockAll(keys)
}

// removeOrphans removes the files of batch that, under their locks, still
// have no record in bucket and were not modified since cutoff. Files whose
// lock lock could not take are left for another run.
func (s *Store) removeOrphans(batch []orphanFile, lock lockKeys, bucket []byte, cutoff time.Time) ([]orphanFile, error) {
	keys := make([]string, len(batch))
	for i, f := range batch {
		keys[i] = f.key
	}
	held, unlock := lock(keys)
	defer unlock()
	locked := make(map[string]bool, len(held))
	for _, k := range held {
		locked[k] = true
	}
	var still []orphanFile
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, f := range unrecorded(tx.Bucket(bucket), batch) {
			if locked[f.key] {
				still = append(still, f)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var removed []orphanFile
	var paths []string
	for _, f := range still {
		info, err := os.Lstat(f.path)
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		f.size = info.Size()
		removed = append(removed, f)
		paths = append(paths, f.path)
	}
	return removed, s.removeFiles(paths)
}
