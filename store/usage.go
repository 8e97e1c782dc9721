package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// RepoUsage is the disk space of one repository.
type RepoUsage struct {
	Repo string
	// Shared is the size of the blobs this repository links that others
	// link too: deleting the repository leaves them.
	Shared int64
	// Exclusive is what deleting the repository frees, once GC has run:
	// the blobs only it links, and its manifests.
	Exclusive int64
	// Blobs and SharedBlobs count the linked blobs, and those of them that
	// other repositories link too.
	Blobs, SharedBlobs int
	// Manifests counts the manifests; ManifestBytes is their bodies' size
	// (part of Exclusive).
	Manifests     int
	ManifestBytes int64
}

// Usage returns the disk usage of the named repositories, or of every
// repository when none is named, sorted by Exclusive, largest first, then
// by name. A named repository that does not exist fails with an error
// wrapping ErrNameUnknown. The numbers come from one consistent snapshot.
func (s *Store) Usage(repos ...string) ([]RepoUsage, error) {
	var out []RepoUsage
	err := s.db.View(func(tx *bolt.Tx) error {
		names := repos
		if len(names) == 0 {
			names = allRepos(tx)
		}
		seen := make(map[string]bool, len(names))
		for _, repo := range names {
			if seen[repo] {
				continue
			}
			seen[repo] = true
			if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
				return fmt.Errorf("%w: %s", ErrNameUnknown, repo)
			}
			u, err := repoUsage(tx, repo)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Exclusive > b.Exclusive || a.Exclusive == b.Exclusive && a.Repo < b.Repo
	})
	return out, err
}

func allRepos(tx *bolt.Tx) []string {
	var names []string
	tx.Bucket(bucketRepos).ForEach(func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	return names
}

func repoUsage(tx *bolt.Tx, repo string) (RepoUsage, error) {
	u := RepoUsage{Repo: repo}
	pre := prefix(repo)
	others := tx.Bucket(bucketBlobRepos).Cursor()
	links := tx.Bucket(bucketLinks).Cursor()
	for k, _ := links.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = links.Next() {
		d := Digest(k[len(pre):])
		info, err := blobInfo(tx, d)
		if err != nil {
			return u, err
		}
		u.Blobs++
		if linkedElsewhere(others, d, repo) {
			u.SharedBlobs++
			u.Shared += info.Size
		} else {
			u.Exclusive += info.Size
		}
	}
	manifests := tx.Bucket(bucketManifests).Cursor()
	for k, v := manifests.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = manifests.Next() {
		n, err := manifestBodySize(v)
		if err != nil {
			return u, fmt.Errorf("manifest %s: %w", k[len(pre):], err)
		}
		u.Manifests++
		u.ManifestBytes += n
	}
	u.Exclusive += u.ManifestBytes
	return u, nil
}

// linkedElsewhere reports whether a repository other than repo links d.
func linkedElsewhere(c *bolt.Cursor, d Digest, repo string) bool {
	pre := prefix(string(d))
	for k, _ := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = c.Next() {
		if string(k[len(pre):]) != repo {
			return true
		}
	}
	return false
}

// manifestBodySize reads the body length of a stored manifest from its
// layout (see encodeManifest), without decoding the head.
func manifestBodySize(v []byte) (int64, error) {
	if len(v) < 5 || v[0] != manifestRecordVersion {
		return 0, fmt.Errorf("manifest record has unknown version")
	}
	n := uint64(binary.BigEndian.Uint32(v[1:5]))
	if uint64(len(v)) < 5+n {
		return 0, fmt.Errorf("manifest record is truncated")
	}
	return int64(uint64(len(v)) - 5 - n), nil
}

// RepoDeletion counts what DeleteRepository removed.
type RepoDeletion struct {
	Tags, Manifests, Links int
}

// DeleteRepository removes repository repo: its tags, manifests, links,
// references and referrers entries, and its catalog entry, in one write
// transaction, so readers see the whole repository or none of it. The blobs
// stay until GC finds that no repository links them. Upload sessions of
// repo are left to expire. It returns ErrNameUnknown when repo does not
// exist.
func (s *Store) DeleteRepository(repo string) (RepoDeletion, error) {
	return s.DeleteRepositoryBy(Origin{}, repo)
}

// DeleteRepositoryBy is DeleteRepository made by origin: in the same
// transaction it records a delete event naming only the repository (as
// registry:2's repository delete does), when a webhook wants it.
func (s *Store) DeleteRepositoryBy(o Origin, repo string) (RepoDeletion, error) {
	var del RepoDeletion
	evs := func() []Event { return []Event{{Time: s.now(), Action: ActionDelete, Repo: repo, Origin: o}} }
	pending, err := s.prepareEvents(evs())
	if err != nil {
		return del, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		del = RepoDeletion{}
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		pre := prefix(repo)
		// Collect first, then delete: deleting under a cursor skips keys.
		tags := keysWithPrefix(tx.Bucket(bucketTags), pre)
		for _, k := range tags {
			if err := s.checkMutable(tx, repo, string(k[len(pre):])); err != nil {
				return err
			}
		}
		manifests := keysWithPrefix(tx.Bucket(bucketManifests), pre)
		links := keysWithPrefix(tx.Bucket(bucketLinks), pre)
		del = RepoDeletion{Tags: len(tags), Manifests: len(manifests), Links: len(links)}
		for _, b := range []struct {
			name []byte
			keys [][]byte
		}{
			{bucketTags, tags},
			{bucketTagTimes, keysWithPrefix(tx.Bucket(bucketTagTimes), pre)},
			{bucketPulls, keysWithPrefix(tx.Bucket(bucketPulls), pre)},
			{bucketManifests, manifests},
			{bucketRefs, keysWithPrefix(tx.Bucket(bucketRefs), pre)},
			{bucketReferrers, keysWithPrefix(tx.Bucket(bucketReferrers), pre)},
			{bucketLinks, links},
			{bucketBlobRepos, reversedLinks(links, len(pre))},
			{bucketRepos, [][]byte{[]byte(repo)}},
		} {
			bucket := tx.Bucket(b.name)
			for _, k := range b.keys {
				if err := bucket.Delete(k); err != nil {
					return err
				}
			}
		}
		return s.recordEvents(tx, pending, evs)
	})
	return del, err
}

// keysWithPrefix copies the keys of b that start with p.
func keysWithPrefix(b *bolt.Bucket, p []byte) [][]byte {
	var out [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		out = append(out, append([]byte(nil), k...))
	}
	return out
}

// reversedLinks turns link keys repo\x00digest (repo\x00 being n bytes)
// into their blobrepos keys digest\x00repo.
func reversedLinks(links [][]byte, n int) [][]byte {
	out := make([][]byte, len(links))
	for i, k := range links {
		out[i] = key(string(k[n:]), string(k[:n-1]))
	}
	return out
}
