package store

import (
	"bytes"
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
// for which visible returns true (nil: all), and whether more follow.
// visible runs inside a read transaction and must not touch the store.
func (s *Store) Repositories(last string, n int, visible func(string) bool) (repos []string, more bool, err error) {
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

// Referrers returns the manifests of repo whose subject is d, filtered by
// artifactType when it is not empty, in digest order. A subject nothing
// refers to yields an empty list, not an error.
func (s *Store) Referrers(repo string, d Digest, artifactType string) ([]StoredManifest, error) {
	out := []StoredManifest{}
	err := s.db.View(func(tx *bolt.Tx) error {
		p := prefix(repo, string(d))
		c := tx.Bucket(bucketReferrers).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			m, err := storedManifest(tx, repo, Digest(k[len(p):]))
			if err != nil {
				return err
			}
			if artifactType != "" && m.ArtifactType != artifactType {
				continue
			}
			m.Body = nil
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// TagCount returns how many tags repo has, counting keys without decoding
// them. It returns ErrNameUnknown when the repository does not exist.
func (s *Store) TagCount(repo string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return ErrNameUnknown
		}
		p := prefix(repo)
		c := tx.Bucket(bucketTags).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}
