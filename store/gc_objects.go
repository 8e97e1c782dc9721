package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GC on a keyed blob store (S3). A blob's bytes are an object whose key its
// record holds, so an object is an orphan when no blob record holds its key:
// an upload whose commit failed or crashed after the object was written, a
// second upload of a stored digest, a blob whose record GC deleted just
// before a crash. Multipart uploads that no upload record holds are the
// other leftover: a session that expired, a monolithic upload cut off.
//
// Both wait for the upload TTL as well as the grace period, the rule upload
// files in DATA/uploads follow: an object is written before its record
// exists, and S3 dates a multipart object by when its upload began, so only
// an age longer than any upload can take (a session idle for the TTL is
// ended) makes it safe to take an unrecorded object for an orphan.

// SessionLister is the optional capability of a BlobStore whose upload
// sessions hold storage outside DATA/uploads (S3: multipart uploads), for
// GC to find and abort what no upload record holds any more.
type SessionLister interface {
	// WalkSessions calls fn for every session storage the backend holds,
	// in no particular order, until fn returns an error, which it returns.
	WalkSessions(ctx context.Context, fn func(StoredSession) error) error
	// AbortStored removes the storage of s; an absent one is no error.
	AbortStored(ctx context.Context, s StoredSession) error
}

// StoredSession is one piece of session storage SessionLister found.
type StoredSession struct {
	// ID is the upload session it was started for (StartSession's id), ""
	// when it belongs to none (a monolithic Write's multipart upload).
	ID string
	// Name says what it is in messages and GC's report (S3: the object
	// key and the multipart upload id).
	Name    string
	Started time.Time
	// Handle is the backend's own state, for AbortStored.
	Handle []byte
}

// orphanObject is an object of a keyed blob store that, when last looked
// at, no blob record held.
type orphanObject struct {
	ref  BlobRef
	size int64
}

// keyedBlobs reports whether the store's blob store names blobs by object
// keys (S3), rather than by the digest's path in DATA/blobs.
func (s *Store) keyedBlobs() bool { return s.route.isKeyed() }

// findOrphanObjects lists the objects of a keyed blob store modified before
// cutoff that no blob record holds, and the session storage started before
// cutoff that no upload record holds. On the directory it finds nothing:
// its orphans are files (findOrphanFiles).
func (s *Store) findOrphanObjects(ctx context.Context, cutoff time.Time) ([]orphanObject, []StoredSession, error) {
	keyed := s.route.keyedStore()
	if keyed == nil {
		return nil, nil, nil
	}
	var old []orphanObject
	err := keyed.Walk(ctx, func(o StoredObject) error {
		if o.Ref.Key != "" && o.Modified.Before(cutoff) {
			old = append(old, orphanObject{ref: o.Ref, size: o.Size})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list blob objects: %w", err)
	}
	var sessions []StoredSession
	if l, ok := keyed.(SessionLister); ok {
		err := l.WalkSessions(ctx, func(ss StoredSession) error {
			if ss.Started.Before(cutoff) {
				sessions = append(sessions, ss)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list upload sessions: %w", err)
		}
	}
	var objects []orphanObject
	err = s.db.View(func(tx *bolt.Tx) error {
		keys, err := recordedKeys(tx)
		if err != nil {
			return err
		}
		for _, o := range old {
			if !keys[o.ref.Key] {
				objects = append(objects, o)
			}
		}
		uploads := tx.Bucket(bucketUploads)
		kept := sessions[:0]
		for _, ss := range sessions {
			if ss.ID == "" || uploads.Get([]byte(ss.ID)) == nil {
				kept = append(kept, ss)
			}
		}
		sessions = kept
		return nil
	})
	return objects, sessions, err
}

// recordedKeys returns the object keys the blob records hold.
func recordedKeys(tx *bolt.Tx) (map[string]bool, error) {
	keys := map[string]bool{}
	err := tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		if !recordHasKey(v) {
			return nil
		}
		ref, err := blobRef(tx, Digest(k))
		if err != nil {
			return err
		}
		keys[ref.Key] = true
		return nil
	})
	return keys, err
}

// recordHasKey reports whether the blob record v may hold an object key: a
// cheap test that spares decoding the records of the directory (Key is
// omitted when empty), which are most records on most stores.
func recordHasKey(v []byte) bool { return bytes.Contains(v, []byte(`"key"`)) }

// sweepObjects removes the orphan objects and aborts the abandoned
// sessions, each after checking again that no record holds it.
func (s *Store) sweepObjects(ctx context.Context, r *GCReport, cutoff time.Time) error {
	objects, sessions, err := s.findOrphanObjects(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("gc objects: %w", err)
	}
	for start := 0; start < len(objects); start += gcBatch {
		if err := checkContext(ctx, "files"); err != nil {
			return err
		}
		batch := objects[start:min(start+gcBatch, len(objects))]
		var keys map[string]bool
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			keys, err = recordedKeys(tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("gc objects: %w", err)
		}
		for _, o := range batch {
			if keys[o.ref.Key] || s.route.inFlight(o.ref.Key) {
				continue
			}
			if err := s.blobs.Delete(ctx, o.ref); err != nil {
				return fmt.Errorf("gc objects: %w", err)
			}
			r.Files = append(r.Files, RemovedFile{Path: o.ref.Key, Size: o.size})
		}
	}
	l := s.route
	for _, ss := range sessions {
		if err := checkContext(ctx, "files"); err != nil {
			return err
		}
		if ss.ID != "" {
			// A session whose lock is held is receiving data, so recorded.
			held, unlock := s.uploads.tryLockAll([]string{ss.ID})
			recorded := len(held) == 0
			if !recorded {
				s.db.View(func(tx *bolt.Tx) error {
					recorded = tx.Bucket(bucketUploads).Get([]byte(ss.ID)) != nil
					return nil
				})
			}
			if recorded {
				unlock()
				continue
			}
			err := l.AbortStored(ctx, ss)
			unlock()
			if err != nil {
				return fmt.Errorf("gc sessions: %w", err)
			}
		} else if err := l.AbortStored(ctx, ss); err != nil {
			return fmt.Errorf("gc sessions: %w", err)
		}
		r.Files = append(r.Files, RemovedFile{Path: ss.Name})
	}
	return nil
}

// objectReport is what a dry run reports of findOrphanObjects.
func objectReport(objects []orphanObject, sessions []StoredSession) []RemovedFile {
	var out []RemovedFile
	for _, o := range objects {
		out = append(out, RemovedFile{Path: o.ref.Key, Size: o.size})
	}
	for _, ss := range sessions {
		out = append(out, RemovedFile{Path: ss.Name})
	}
	return out
}

// removeBlobBytes removes the bytes of blobs whose records are gone: files
// in DATA/blobs (refs without a key), removed and their shards synced
// together, and objects of the keyed blob store.
func (s *Store) removeBlobBytes(ctx context.Context, refs []BlobRef) error {
	var paths []string
	for _, ref := range refs {
		if ref.Key == "" {
			paths = append(paths, s.BlobPath(ref.Digest))
			continue
		}
		if err := s.blobs.Delete(ctx, ref); err != nil {
			return err
		}
	}
	return s.removeFiles(paths)
}

// removeSessions removes the storage of the sessions GC removed (planned in
// batch): their files in DATA/uploads, removed and synced together on the
// directory; on a keyed blob store, what AbortSession removes (S3: the
// multipart upload), from the state their records held.
func (s *Store) removeSessions(ctx context.Context, batch []plannedUpload, removed []RemovedUpload) error {
	values := make(map[string][]byte, len(batch))
	for _, u := range batch {
		values[u.id] = u.value
	}
	var paths []string
	for _, u := range removed {
		var rec uploadRecord
		if err := decode(values[u.ID], &rec); err != nil {
			return fmt.Errorf("upload record %s: %w", u.ID, err)
		}
		sess := rec.session(u.ID)
		switch b, _, err := s.route.sessionOf(sess); {
		case err != nil:
			// In an object store this process was not given: its
			// storage is left for a run that has it.
		case b == BlobStore(s.route.dir):
			paths = append(paths, s.uploadPath(u.ID))
		default:
			if err := s.blobs.AbortSession(ctx, sess); err != nil {
				return err
			}
		}
	}
	return s.removeFiles(paths)
}
