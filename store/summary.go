package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RepoSummary is what a repository list shows of one repository.
type RepoSummary struct {
	RepoUsage
	Tags     int
	LastPush time.Time // the newest manifest's push time; zero when it has none
}

// Summaries returns the summary of every repository, in name order, from
// one consistent snapshot, with the Generation that snapshot was taken at.
// It reads every link, manifest and tag record, so its cost grows with the
// registry: callers that list often keep the result and ask again only when
// Generation has moved on.
func (s *Store) Summaries() ([]RepoSummary, uint64, error) {
	var out []RepoSummary
	var gen uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		gen = uint64(tx.ID())
		for _, repo := range allRepos(tx) {
			u, err := repoUsage(tx, repo)
			if err != nil {
				return err
			}
			sum := RepoSummary{RepoUsage: u}
			pre := prefix(repo)
			tags := tx.Bucket(bucketTags).Cursor()
			for k, _ := tags.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = tags.Next() {
				sum.Tags++
			}
			var last int64
			manifests := tx.Bucket(bucketManifests).Cursor()
			for k, v := manifests.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = manifests.Next() {
				rec, _, err := decodeManifest(v)
				if err != nil {
					return fmt.Errorf("manifest %s: %w", k[len(pre):], err)
				}
				last = max(last, rec.Created)
			}
			if last != 0 {
				sum.LastPush = time.Unix(0, last)
			}
			out = append(out, sum)
		}
		return nil
	})
	return out, gen, err
}

// Generation returns a number that moves on with every committed write to
// meta.db (bbolt's transaction id), whatever it changed: equal numbers mean
// nothing changed in between. Safe for concurrent use.
func (s *Store) Generation() (uint64, error) {
	var gen uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		gen = uint64(tx.ID())
		return nil
	})
	return gen, err
}
