package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// tagCheckLog holds the times a mirror's upstream confirmed a cached tag
// that ConfirmTag noted and FlushPulls has not written yet. Like a pull, a
// confirmation must not cost a commit of its own; written in batches, it
// survives a restart, so a restarted server does not ask the upstream
// about every tag again within the tag TTL.
type tagCheckLog struct {
	mu      sync.Mutex
	pending map[string]int64 // key(repo, tag) → unix nanoseconds
}

// ConfirmTag notes that a mirror's upstream confirmed the cached tag of
// repo now. tag may be any name the mirror keys a check by (it keeps a
// subject's referrers as "referrers@<digest>", which no tag can be). It only touches memory; FlushPulls writes. Safe for concurrent
// use.
func (s *Store) ConfirmTag(repo, tag string) {
	now := s.now().UnixNano()
	k := string(key(repo, tag))
	s.tagChecks.mu.Lock()
	if s.tagChecks.pending == nil {
		s.tagChecks.pending = make(map[string]int64)
	}
	s.tagChecks.pending[k] = now
	s.tagChecks.mu.Unlock()
}

// TagConfirmed returns when the upstream last confirmed tag of repo,
// counting confirmations not yet written; zero when never. The record of
// a deleted tag stays until the tag is cached and confirmed again, which
// writes over it; a mirror asks only about tags the store holds.
func (s *Store) TagConfirmed(repo, tag string) time.Time {
	k := key(repo, tag)
	var t time.Time
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTagChecks); b != nil {
			t = parseTimeValue(b.Get(k))
		}
		return nil
	})
	s.tagChecks.mu.Lock()
	if ns, ok := s.tagChecks.pending[string(k)]; ok && time.Unix(0, ns).After(t) {
		t = time.Unix(0, ns)
	}
	s.tagChecks.mu.Unlock()
	return t
}

// FlushPulls writes the noted pulls (RecordPull) and tag confirmations
// (ConfirmTag), each batch in one transaction, and forgets them. Close
// calls it; serve runs it every second.
func (s *Store) FlushPulls() error {
	return errors.Join(s.flushPullLog(), s.flushTagChecks())
}

// flushTagChecks writes the noted confirmations in repositories that
// still exist, and drops those of repositories that no longer do, in one
// transaction.
func (s *Store) flushTagChecks() error {
	s.tagChecks.mu.Lock()
	pending := s.tagChecks.pending
	s.tagChecks.pending = nil
	s.tagChecks.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		repos, checks := tx.Bucket(bucketRepos), tx.Bucket(bucketTagChecks)
		for k, ns := range pending {
			kb := []byte(k)
			if repo, _ := splitPair(kb); repos.Get([]byte(repo)) == nil {
				if err := checks.Delete(kb); err != nil {
					return err
				}
				continue
			}
			if err := checks.Put(kb, timeValue(time.Unix(0, ns))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.tagChecks.mu.Lock()
		for k, ns := range pending {
			if s.tagChecks.pending == nil {
				s.tagChecks.pending = make(map[string]int64)
			}
			if s.tagChecks.pending[k] < ns {
				s.tagChecks.pending[k] = ns
			}
		}
		s.tagChecks.mu.Unlock()
		return fmt.Errorf("write tag confirmations: %w", err)
	}
	return nil
}
