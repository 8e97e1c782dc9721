package store

import bolt "go.etcd.io/bbolt"

// AuthGeneration returns a number that changes after every committed change
// of a user or an access rule made through this Store. Only one process
// opens a data directory, so a cache of user or rule records built from this
// Store is current for as long as the number it was built at is: the auth
// checks on every request read it instead of meta.db. Safe for concurrent
// use.
func (s *Store) AuthGeneration() uint64 { return s.authGen.Load() }

// updateAuth runs a write transaction on users or rules and, once it has
// committed, moves AuthGeneration on.
func (s *Store) updateAuth(fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		s.authGen.Add(1)
	}
	return err
}
