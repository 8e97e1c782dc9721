package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// MoveRule moves the rule at the 0-based position from to the position to,
// shifting the rules between them by one, in one transaction: a reader sees
// the old order or the new one. It returns ErrRuleUnknown when either
// position is outside the list. Moving a rule to where it is changes
// nothing.
func (s *Store) MoveRule(from, to int) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		rs, err := getRules(tx)
		if err != nil {
			return err
		}
		for _, p := range []int{from, to} {
			if p < 0 || p >= len(rs) {
				return fmt.Errorf("%w: %d", ErrRuleUnknown, p)
			}
		}
		if from == to {
			return nil
		}
		r := rs[from]
		rs = slices.Insert(slices.Delete(rs, from, from+1), to, r)
		return putRules(tx, rs)
	})
}
