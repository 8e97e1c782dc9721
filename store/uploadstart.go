package store

import (
	"context"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Starting an upload session does not wait for its record to be durable
// (docs/performance.md, "A POST no longer waits for a commit"). A POST
// acknowledges no content: if the server crashes before the record is
// committed, the client's next request on the session gets
// BLOB_UPLOAD_UNKNOWN and it starts again, and the session's empty file is
// an orphan GC removes after the upload TTL.
// So StartUpload answers as soon as the session's file exists and its
// record is queued for the next group commit, and a background goroutine
// waits for that commit. Until then the session is "starting":
//
//   - its session lock is held, so a PATCH, PUT or DELETE of it waits for
//     the record (they take the lock first), and GC and verify, which only
//     try session locks, pass over it as in use;
//   - UploadStatus, which takes no lock, waits for the start to finish;
//   - the per-owner cap counts it (uploadStarts.reserve) until its record
//     is in the records the cap reads.
//
// Nothing acknowledged as stored depends on this: blob and manifest
// commits still wait for their own fsynced commit.

// uploadStarts tracks the sessions whose records are not yet committed.
type uploadStarts struct {
	mu      sync.Mutex
	byOwner map[string]map[string]struct{} // owner → ids of its sessions starting
	done    sync.Map                       // id → chan struct{}, closed when the start finished
	wg      sync.WaitGroup                 // the goroutines waiting for commits; Close waits for them
}

// reserve counts session id as starting for owner, unless owner has max
// sessions open already: count(starting) reports how many owner has, given
// the ids of its sessions still counted as starting here (some of which
// may be committed already: count must not count those twice). max <= 0
// means no cap.
func (u *uploadStarts) reserve(owner, id string, max int, count func(starting []string) (int, error)) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if max > 0 {
		starting := make([]string, 0, len(u.byOwner[owner]))
		for sid := range u.byOwner[owner] {
			starting = append(starting, sid)
		}
		n, err := count(starting)
		if err != nil {
			return err
		}
		if n >= max {
			return ErrTooManyUploads
		}
	}
	if u.byOwner == nil {
		u.byOwner = make(map[string]map[string]struct{})
	}
	if u.byOwner[owner] == nil {
		u.byOwner[owner] = make(map[string]struct{})
	}
	u.byOwner[owner][id] = struct{}{}
	return nil
}

func (u *uploadStarts) release(owner, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.byOwner[owner], id)
	if len(u.byOwner[owner]) == 0 {
		delete(u.byOwner, owner)
	}
}

// wait returns once session id is not starting.
func (u *uploadStarts) wait(id string) {
	if ch, ok := u.done.Load(id); ok {
		<-ch.(chan struct{})
	}
}

// settle returns once every session that was starting when it was called
// has its record committed (or its start failed): maintenance that reads
// the upload records (GC, ExpireUploads, DropUploads, Verify, Stats, a
// backup's snapshot) calls it first, so a session whose start was answered
// before the maintenance began is seen in the records, as it was when a
// start waited for its commit.
func (u *uploadStarts) settle() {
	u.done.Range(func(_, ch any) bool {
		<-ch.(chan struct{})
		return true
	})
}

// commitStart records session id (rec, encoded as v) of owner in the
// background: the caller holds the session's lock and hands its unlock
// over, and owner's reservation. Both are given back once the record is
// committed; if the commit fails, the session's data is removed and the
// session stays unknown.
func (s *Store) commitStart(id, owner string, max int, v []byte, backend []byte, unlock func()) {
	done := make(chan struct{})
	s.starts.done.Store(id, done)
	s.starts.wg.Add(1)
	go func() {
		defer s.starts.wg.Done()
		err := s.groupUpdate(nil, func(tx *bolt.Tx) error {
			owners := tx.Bucket(bucketUploadOwners)
			// Counted again against the records, in case a starting
			// session was counted only there (reserve errs the other way).
			if max > 0 && countPrefix(owners, prefix(owner), max+1) > max {
				return ErrTooManyUploads
			}
			if err := owners.Put(key(owner, id), nil); err != nil {
				return err
			}
			return tx.Bucket(bucketUploads).Put([]byte(id), v)
		})
		if err != nil {
			s.blobs.AbortSession(context.Background(), Session{ID: id, State: backend})
		}
		// The lock goes before done closes: maintenance that settled
		// (waited for done) then tries the session's lock, and must find
		// it free.
		s.starts.release(owner, id)
		unlock()
		s.starts.done.Delete(id)
		close(done)
	}()
}
