package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The sweep removes what the plan found, each batch in one short write
// transaction that checks every planned thing again against the current
// state. Those checks are what make GC safe under concurrent pushes; they
// are the same ones the API's writes make in their own transactions, and
// docs/gc.md walks through each interleaving.

// sweepManifests removes the doomed manifests that are still unreachable.
func (s *Store) sweepManifests(ctx context.Context, p *gcPlan, r *GCReport, opts GCOptions) error {
	for i, batch := range p.manifests {
		if err := checkContext(ctx, "manifests"); err != nil {
			return err
		}
		started := time.Now()
		var removed []RemovedManifest
		var kept int
		err := s.db.Update(func(tx *bolt.Tx) error {
			removed, kept = nil, 0
			doomed := stillDoomed(tx, batch)
			for _, m := range batch {
				if !doomed[m] {
					continue
				}
				if err := removeManifest(tx, m.repo, m.digest, m.rec); err != nil {
					return fmt.Errorf("remove manifest %s@%s: %w", m.repo, m.digest, err)
				}
				removed = append(removed, RemovedManifest{Repo: m.repo, Digest: m.digest, Size: m.size})
			}
			kept = len(batch) - len(removed)
			return nil
		})
		if err != nil {
			return fmt.Errorf("gc manifests: %w", err)
		}
		r.Manifests = append(r.Manifests, removed...)
		r.Kept += kept
		opts.progress("manifests", i+1, len(p.manifests))
		if i+1 < len(p.manifests) {
			gcYield(ctx, started)
		}
	}
	return nil
}

// stillDoomed re-checks a batch of manifests and returns those to remove.
// A manifest is saved when it changed or vanished, is tagged now, is
// listed by a manifest outside the batch, or has a present subject outside
// the batch; and whatever a saved manifest keeps is saved with it: its
// children, and the referrers whose subject it is.
func stillDoomed(tx *bolt.Tx, batch []*plannedManifest) map[*plannedManifest]bool {
	type id struct {
		repo   string
		digest Digest
	}
	members := make(map[id]*plannedManifest, len(batch))
	referrers := make(map[id][]*plannedManifest)
	for _, m := range batch {
		members[id{m.repo, m.digest}] = m
		if m.rec.Subject != "" {
			subject := id{m.repo, m.rec.Subject}
			referrers[subject] = append(referrers[subject], m)
		}
	}
	inBatch := func(repo string, d Digest) bool { return members[id{repo, d}] != nil }
	tagged := taggedIn(tx, batch)
	manifests, refs := tx.Bucket(bucketManifests), tx.Bucket(bucketRefs).Cursor()

	var saved []*plannedManifest
	for _, m := range batch {
		v := manifests.Get(key(m.repo, string(m.digest)))
		switch {
		case v == nil || !bytes.HasPrefix(v, m.head) || len(v)-len(m.head) != int(m.size),
			tagged[m.repo][m.digest],
			m.rec.Subject != "" && !inBatch(m.repo, m.rec.Subject) && manifests.Get(key(m.repo, string(m.rec.Subject))) != nil,
			referencedFromOutside(refs, m, inBatch):
			saved = append(saved, m)
		}
	}
	doomed := make(map[*plannedManifest]bool, len(batch))
	for _, m := range batch {
		doomed[m] = true
	}
	for len(saved) > 0 {
		m := saved[len(saved)-1]
		saved = saved[:len(saved)-1]
		if !doomed[m] {
			continue
		}
		doomed[m] = false
		for _, c := range m.rec.Children {
			if child := members[id{m.repo, c}]; child != nil {
				saved = append(saved, child)
			}
		}
		saved = append(saved, referrers[id{m.repo, m.digest}]...)
	}
	return doomed
}

// referencedFromOutside reports whether a manifest outside the batch lists
// m (as a child, or as a blob: a digest can name both).
func referencedFromOutside(refs *bolt.Cursor, m *plannedManifest, inBatch func(string, Digest) bool) bool {
	pre := prefix(m.repo, string(m.digest))
	for k, _ := refs.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = refs.Next() {
		if !inBatch(m.repo, Digest(k[len(pre):])) {
			return true
		}
	}
	return false
}

// taggedIn returns, per repository of the batch, the digests tags point at.
func taggedIn(tx *bolt.Tx, batch []*plannedManifest) map[string]map[Digest]bool {
	out := make(map[string]map[Digest]bool)
	c := tx.Bucket(bucketTags).Cursor()
	for _, m := range batch {
		if _, done := out[m.repo]; done {
			continue
		}
		set := make(map[Digest]bool)
		pre := prefix(m.repo)
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			set[Digest(v)] = true
		}
		out[m.repo] = set
	}
	return out
}

// sweepLinks removes the planned links that no manifest references now and
// that were not made again since the plan (an upload or mount refreshes a
// link's time), then the repositories left with nothing.
func (s *Store) sweepLinks(ctx context.Context, p *gcPlan, r *GCReport, opts GCOptions) error {
	for start := 0; start < len(p.links); start += gcBatch {
		if err := checkContext(ctx, "links"); err != nil {
			return err
		}
		started := time.Now()
		batch := p.links[start:min(start+gcBatch, len(p.links))]
		var removed []RemovedLink
		err := s.db.Update(func(tx *bolt.Tx) error {
			removed = nil
			links, refs := tx.Bucket(bucketLinks), tx.Bucket(bucketRefs)
			for _, l := range batch {
				if !bytes.Equal(links.Get(key(l.repo, string(l.digest))), l.value) ||
					hasPrefix(refs, prefix(l.repo, string(l.digest))) {
					continue
				}
				if err := unlinkBlob(tx, l.repo, l.digest); err != nil {
					return err
				}
				removed = append(removed, RemovedLink{Repo: l.repo, Digest: l.digest})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("gc links: %w", err)
		}
		r.Links = append(r.Links, removed...)
		r.Kept += len(batch) - len(removed)
		opts.progress("links", start+len(batch), len(p.links))
		if start+len(batch) < len(p.links) {
			gcYield(ctx, started)
		}
	}
	return s.sweepRepos(p, r)
}

// sweepRepos removes the planned repositories that still hold nothing.
func (s *Store) sweepRepos(p *gcPlan, r *GCReport) error {
	if len(p.repos) == 0 {
		return nil
	}
	var removed []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed = nil
		for _, repo := range p.repos {
			pre := prefix(repo)
			if hasPrefix(tx.Bucket(bucketTags), pre) || hasPrefix(tx.Bucket(bucketManifests), pre) ||
				hasPrefix(tx.Bucket(bucketLinks), pre) {
				continue
			}
			if err := tx.Bucket(bucketRepos).Delete([]byte(repo)); err != nil {
				return err
			}
			removed = append(removed, repo)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc repositories: %w", err)
	}
	r.Repositories = append(r.Repositories, removed...)
	return nil
}

// sweepBlobs removes the planned blobs that no repository links now. For
// each batch it holds the digest locks of the batch, so no upload can place
// one of these files and record it while the record is checked, deleted
// and the file removed: metadata first, file after, so a crash leaves an
// orphan file for the next run, never a record without its file.
func (s *Store) sweepBlobs(ctx context.Context, p *gcPlan, r *GCReport, opts GCOptions) error {
	for start := 0; start < len(p.blobs); start += gcBatch {
		if err := checkContext(ctx, "blobs"); err != nil {
			return err
		}
		started := time.Now()
		batch := p.blobs[start:min(start+gcBatch, len(p.blobs))]
		keys := make([]string, len(batch))
		for i, b := range batch {
			keys[i] = string(b.digest)
		}
		unlock := s.digestLocks.lockAll(keys)
		removed, refs, err := s.deleteBlobRecords(batch)
		if err == nil {
			err = s.removeBlobBytes(ctx, refs)
		}
		unlock()
		if err != nil {
			return fmt.Errorf("gc blobs: %w", err)
		}
		r.Blobs = append(r.Blobs, removed...)
		r.Kept += len(batch) - len(removed)
		opts.progress("blobs", start+len(batch), len(p.blobs))
		if start+len(batch) < len(p.blobs) {
			gcYield(ctx, started)
		}
	}
	return nil
}

// deleteBlobRecords deletes the records of the blobs of batch that are
// unchanged, unlinked and unpinned, and returns them with where their
// bytes are (from the records deleted). The pin lock is held until the
// commit, so a pin taken meanwhile waits and then its snapshot no longer
// sees them.
func (s *Store) deleteBlobRecords(batch []plannedBlob) ([]RemovedBlob, []BlobRef, error) {
	s.gc.pinMu.Lock()
	defer s.gc.pinMu.Unlock()
	var removed []RemovedBlob
	var refs []BlobRef
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed, refs = nil, nil
		blobs, repos := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRepos)
		for _, b := range batch {
			if s.gc.pinned(b.digest) || !bytes.Equal(blobs.Get([]byte(b.digest)), b.value) ||
				hasPrefix(repos, prefix(string(b.digest))) {
				continue
			}
			ref, err := blobRef(tx, b.digest)
			if err != nil {
				return err
			}
			if err := blobs.Delete([]byte(b.digest)); err != nil {
				return err
			}
			removed = append(removed, RemovedBlob{Digest: b.digest, Size: b.size})
			refs = append(refs, ref)
		}
		return nil
	})
	return removed, refs, err
}

// removeFiles removes paths (a missing one is fine) and syncs their
// directories, so the removals are durable before the locks are released.
func (s *Store) removeFiles(paths []string) error {
	dirs := make(map[string]bool)
	for _, path := range paths {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		dirs[filepath.Dir(path)] = true
	}
	for dir := range dirs {
		if err := SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// sweepUploads removes the planned sessions that are still idle. The
// session locks keep AppendUpload and CommitUpload out meanwhile; a session
// that received data since the plan has a new record, and one whose lock a
// request holds is receiving data: both are kept. GC never waits for a
// session's lock, since its holder may be waiting on a slow client.
func (s *Store) sweepUploads(ctx context.Context, p *gcPlan, r *GCReport, opts GCOptions) error {
	for start := 0; start < len(p.uploads); start += gcBatch {
		if err := checkContext(ctx, "uploads"); err != nil {
			return err
		}
		started := time.Now()
		batch := p.uploads[start:min(start+gcBatch, len(p.uploads))]
		ids := make([]string, len(batch))
		for i, u := range batch {
			ids[i] = u.id
		}
		// A session whose lock is held is receiving a chunk: not idle.
		held, unlock := s.uploads.tryLockAll(ids)
		free := make(map[string]bool, len(held))
		for _, id := range held {
			free[id] = true
		}
		var removed []RemovedUpload
		err := s.db.Update(func(tx *bolt.Tx) error {
			removed = nil
			uploads := tx.Bucket(bucketUploads)
			for _, u := range batch {
				if !free[u.id] || !bytes.Equal(uploads.Get([]byte(u.id)), u.value) {
					continue
				}
				if err := deleteUpload(tx, []byte(u.id)); err != nil {
					return err
				}
				removed = append(removed, RemovedUpload{ID: u.id, Repo: u.repo, Size: u.size})
			}
			return nil
		})
		if err == nil {
			err = s.removeSessions(ctx, batch, removed)
		}
		unlock()
		if err != nil {
			return fmt.Errorf("gc uploads: %w", err)
		}
		r.Uploads = append(r.Uploads, removed...)
		r.Kept += len(batch) - len(removed)
		opts.progress("uploads", start+len(batch), len(p.uploads))
		if start+len(batch) < len(p.uploads) {
			gcYield(ctx, started)
		}
	}
	return nil
}
