package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pullLog holds the last-pull times that RecordPull noted and FlushPulls
// has not written yet. A pull must not cost a bbolt commit (each is an
// fsync; harbor#16039 is a database overloaded by them), so pulls land
// here and are written in one transaction per flush: at 1,000 pulls a
// second, with a flush a second, one commit a second.
type pullLog struct {
	mu      sync.Mutex
	pending map[string]int64 // key(repo, digest) → unix nanoseconds
}

// RecordPull notes that manifest d of repo was pulled now. The API calls
// it for a GET of a manifest, by tag or by digest (containerd resolves a
// tag with HEAD and then GETs by digest); HEADs, the web UI, mirror fills
// and backups do not pull. It only touches memory; FlushPulls writes.
// Safe for concurrent use.
func (s *Store) RecordPull(repo string, d Digest) {
	now := s.now().UnixNano()
	k := string(key(repo, string(d)))
	s.pulls.mu.Lock()
	if s.pulls.pending == nil {
		s.pulls.pending = make(map[string]int64)
	}
	s.pulls.pending[k] = now
	s.pulls.mu.Unlock()
}

// flushPullLog writes the noted pulls in one transaction, for the
// manifests that still exist, and forgets them. FlushPulls calls it.
func (s *Store) flushPullLog() error {
	s.pulls.mu.Lock()
	pending := s.pulls.pending
	s.pulls.pending = nil
	s.pulls.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		manifests, pulls := tx.Bucket(bucketManifests), tx.Bucket(bucketPulls)
		for k, ns := range pending {
			kb := []byte(k)
			// A manifest deleted since its pull leaves no record behind.
			if manifests.Get(kb) == nil {
				continue
			}
			if old := pulls.Get(kb); old != nil && parseTimeValue(old).UnixNano() >= ns {
				continue
			}
			if err := pulls.Put(kb, timeValue(time.Unix(0, ns))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Keep them for the next flush rather than lose them.
		s.pulls.mu.Lock()
		for k, ns := range pending {
			if s.pulls.pending == nil {
				s.pulls.pending = make(map[string]int64)
			}
			if s.pulls.pending[k] < ns {
				s.pulls.pending[k] = ns
			}
		}
		s.pulls.mu.Unlock()
		return fmt.Errorf("write last-pull times: %w", err)
	}
	return nil
}

// FlushPullsEvery calls FlushPulls every interval until ctx is done, and
// reports failures to onErr. Run it in its own goroutine.
func (s *Store) FlushPullsEvery(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.FlushPulls(); err != nil && onErr != nil {
			onErr(err)
		}
	}
}

// lastPulls returns the last-pull times of repo's manifests: the stored
// ones, overlaid with those still in memory.
func (s *Store) lastPulls(tx *bolt.Tx, repo string) map[Digest]time.Time {
	out := make(map[Digest]time.Time)
	pre := prefix(repo)
	if b := tx.Bucket(bucketPulls); b != nil {
		c := b.Cursor()
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			out[Digest(k[len(pre):])] = parseTimeValue(v)
		}
	}
	s.pulls.mu.Lock()
	for k, ns := range s.pulls.pending {
		if len(k) > len(pre) && k[:len(pre)] == string(pre) {
			d := Digest(k[len(pre):])
			if t := time.Unix(0, ns); t.After(out[d]) {
				out[d] = t
			}
		}
	}
	s.pulls.mu.Unlock()
	return out
}

// TagInfo is a tag with its times.
type TagInfo struct {
	Tag    string    `json:"tag"`
	Digest Digest    `json:"digest"`
	Pushed time.Time `json:"pushed"`          // when the tag last moved; the manifest's push for older tags
	Pulled time.Time `json:"pulled,omitzero"` // the manifest's last pull; zero when never pulled
}

// TagInfos returns the tags of repo in lexical order with their push and
// last-pull times. ErrNameUnknown when the repository does not exist.
func (s *Store) TagInfos(repo string) ([]TagInfo, error) {
	var out []TagInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		pulls := s.lastPulls(tx, repo)
		var err error
		out, err = tagInfos(tx, repo, pulls)
		return err
	})
	return out, err
}

// tagInfos reads repo's tags with their times; pulls gives the last pulls.
func tagInfos(tx *bolt.Tx, repo string, pulls map[Digest]time.Time) ([]TagInfo, error) {
	var out []TagInfo
	pre := prefix(repo)
	times, manifests := tx.Bucket(bucketTagTimes), tx.Bucket(bucketManifests)
	c := tx.Bucket(bucketTags).Cursor()
	for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
		ti := TagInfo{Tag: string(k[len(pre):]), Digest: Digest(v), Pulled: pulls[Digest(v)]}
		if times != nil {
			ti.Pushed = parseTimeValue(times.Get(k))
		}
		if ti.Pushed.IsZero() {
			if mv := manifests.Get(key(repo, string(v))); mv != nil {
				rec, _, err := decodeManifest(mv)
				if err != nil {
					return nil, fmt.Errorf("manifest %s@%s: %w", repo, v, err)
				}
				ti.Pushed = time.Unix(0, rec.Created)
			}
		}
		out = append(out, ti)
	}
	return out, nil
}

// LastPull returns when manifest d of repo was last pulled (by tag or by
// digest), counting pulls not yet written; zero when never.
func (s *Store) LastPull(repo string, d Digest) time.Time {
	k := key(repo, string(d))
	var t time.Time
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketPulls); b != nil {
			t = parseTimeValue(b.Get(k))
		}
		return nil
	})
	s.pulls.mu.Lock()
	if ns, ok := s.pulls.pending[string(k)]; ok && time.Unix(0, ns).After(t) {
		t = time.Unix(0, ns)
	}
	s.pulls.mu.Unlock()
	return t
}
