package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tags returns up to n tags of repo in lexical order, starting after last
// (empty: from the start), and whether more follow. n <= 0 means no limit.
// It returns ErrNameUnknown when the repository does not exist.
func (s *Store) Tags(repo, last string, n int) (tags []string, more bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		p := prefix(repo)
		tags, more = page(tx.Bucket(bucketTags), p, last, n)
		return nil
	})
	return tags, more, err
}

// Repositories returns up to n repository names in lexical order after last
// for which visible returns true (nil: all), and whether more follow; n <= 0
// means no limit. The list is never nil.
// visible runs inside a read transaction and must not touch the store.
func (s *Store) Repositories(last string, n int, visible func(string) bool) (repos []string, more bool, err error) {
	repos = []string{} // an empty registry lists [], as the spec shows, not null
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRepos).Cursor()
		k, _ := c.First()
		if last != "" {
			k, _ = c.Seek([]byte(last))
			if k != nil && string(k) == last {
				k, _ = c.Next()
			}
		}
		for ; k != nil; k, _ = c.Next() {
			name := string(k)
			if visible != nil && !visible(name) {
				continue
			}
			if n > 0 && len(repos) == n {
				more = true
				return nil
			}
			repos = append(repos, name)
		}
		return nil
	})
	return repos, more, err
}

// page lists the key suffixes after p in b, starting after last, at most n.
func page(b *bolt.Bucket, p []byte, last string, n int) (out []string, more bool) {
	c := b.Cursor()
	k, _ := c.Seek(p)
	if last != "" {
		start := append(append([]byte(nil), p...), last...)
		k, _ = c.Seek(start)
		if k != nil && string(k) == string(start) {
			k, _ = c.Next()
		}
	}
	out = []string{}
	for ; k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if n > 0 && len(out) == n {
			return out, true
		}
		out = append(out, string(k[len(p):]))
	}
	return out, false
}

// ReferrersPage is one page of the referrers of a subject: the digests to
// list, and whether more follow.
type ReferrersPage struct {
	Digests []Digest
	More    bool
}

// Referrers returns a page of the manifests of repo whose subject is d,
// filtered by artifactType when it is not empty, in digest order, starting
// after the digest after ("" for the first page). A page holds at most
// maxCount referrers and, past its first, stops before its records would
// exceed maxBytes: a referrer's annotations are copied into the response,
// and 40 referrers of 4 MB each would otherwise make one answer of 160 MB.
// A subject nothing refers to yields an empty page, not an error. Read each
// listed referrer with Referrer.
func (s *Store) Referrers(repo string, d Digest, artifactType string, after Digest, maxCount, maxBytes int) (ReferrersPage, error) {
	page := ReferrersPage{Digests: []Digest{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		p := prefix(repo, string(d))
		manifests := tx.Bucket(bucketManifests)
		c := tx.Bucket(bucketReferrers).Cursor()
		k, _ := c.Seek(p)
		if after != "" {
			k, _ = c.Seek(key(repo, string(d), string(after)))
			if k != nil && string(k[len(p):]) == string(after) {
				k, _ = c.Next()
			}
		}
		total := 0
		for ; k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			ref := Digest(k[len(p):])
			v := manifests.Get(key(repo, string(ref)))
			if v == nil {
				return fmt.Errorf("referrer %s of %s: %w", ref, d, ErrManifestUnknown)
			}
			rec, _, err := decodeManifest(v)
			if err != nil {
				return fmt.Errorf("manifest %s: %w", ref, err)
			}
			if artifactType != "" && rec.ArtifactType != artifactType {
				continue
			}
			size := len(v) // head and body: more than the descriptor needs
			if len(page.Digests) == maxCount || (len(page.Digests) > 0 && total+size > maxBytes) {
				page.More = true
				return nil
			}
			total += size
			page.Digests = append(page.Digests, ref)
		}
		return nil
	})
	return page, err
}

// Referrer returns the descriptor of manifest ref of repo as the referrers
// API lists it, or ErrManifestUnknown when it is gone.
func (s *Store) Referrer(repo string, ref Digest) (Descriptor, error) {
	var desc Descriptor
	err := s.db.View(func(tx *bolt.Tx) error {
		m, err := storedManifest(tx, repo, ref)
		if err != nil {
			return err
		}
		desc = Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		return nil
	})
	return desc, err
}

// TagCount returns how many tags repo has, counting keys without decoding
// them. It returns ErrNameUnknown when the repository does not exist.
func (s *Store) TagCount(repo string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		n = tagCount(tx, repo)
		return nil
	})
	return n, err
}

func tagCount(tx *bolt.Tx, repo string) int {
	n := 0
	p := prefix(repo)
	c := tx.Bucket(bucketTags).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// LastPush returns when the newest manifest of repo was pushed: the
// largest Created of its manifests, the zero time when it has none. It
// reads every manifest record of the repository, so its cost grows with
// the repository's manifests (not its tags). It returns ErrNameUnknown
// when the repository does not exist.
func (s *Store) LastPush(repo string) (time.Time, error) {
	var last time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		var err error
		last, err = lastPush(tx, repo)
		return err
	})
	return last, err
}

// lastPush is LastPush inside tx, for a repository known to exist.
func lastPush(tx *bolt.Tx, repo string) (time.Time, error) {
	var last int64
	p := prefix(repo)
	c := tx.Bucket(bucketManifests).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		rec, _, err := decodeManifest(v)
		if err != nil {
			return time.Time{}, fmt.Errorf("manifest %s: %w", k[len(p):], err)
		}
		last = max(last, rec.Created)
	}
	if last == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, last), nil
}
