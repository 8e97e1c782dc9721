package store

import (
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
			last, err := lastPush(tx, repo)
			if err != nil {
				return err
			}
			out = append(out, RepoSummary{RepoUsage: u, Tags: tagCount(tx, repo), LastPush: last})
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
