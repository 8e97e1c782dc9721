package store

import (
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// ErrRuleUnknown is returned for a rule position that does not exist.
var ErrRuleUnknown = errors.New("no access rule at that position")

// Rule is one ordered access rule, in the terms of cesanta/docker_auth's
// acl entries: the first rule whose Account, Type and Name match a request
// decides which of the requested Actions are granted; no match denies.
//
// The store keeps rules as given; pattern syntax and actions are checked by
// server/auth (auth.ValidateRule), which also defines the matching.
type Rule struct {
	Account string   // exact, glob, or /regex/; "" = anonymous
	Name    string   // exact, glob, or /regex/; may contain ${account}
	Type    string   // docker_auth match.type: "" (repository), or a pattern such as "registry"
	Actions []string // pull, push, delete, *
	Comment string
}

// Rules returns the access rules in order (position 0 first).
func (s *Store) Rules() ([]Rule, error) {
	var rs []Rule
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rs, err = getRules(tx)
		return err
	})
	return rs, err
}

// InsertRule inserts r at the 0-based position at, moving later rules down.
// at < 0 or at >= the number of rules appends.
func (s *Store) InsertRule(r Rule, at int) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		rs, err := getRules(tx)
		if err != nil {
			return err
		}
		if at < 0 || at >= len(rs) {
			at = len(rs)
		}
		return putRules(tx, slices.Insert(rs, at, r))
	})
}

// DeleteRule deletes the rule at the 0-based position at, moving later rules
// up. It returns ErrRuleUnknown when there is no rule there.
func (s *Store) DeleteRule(at int) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		rs, err := getRules(tx)
		if err != nil {
			return err
		}
		if at < 0 || at >= len(rs) {
			return fmt.Errorf("%w: %d", ErrRuleUnknown, at)
		}
		return putRules(tx, slices.Delete(rs, at, at+1))
	})
}

// ReplaceRules replaces every rule with rs in one transaction, so a reader
// sees the old list or the new one, never a mix.
func (s *Store) ReplaceRules(rs []Rule) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		return putRules(tx, rs)
	})
}

func getRules(tx *bolt.Tx) ([]Rule, error) {
	var rs []Rule
	err := tx.Bucket(bucketRules).ForEach(func(k, v []byte) error {
		var r Rule
		if err := decode(v, &r); err != nil {
			return fmt.Errorf("rule %x: %w", k, err)
		}
		rs = append(rs, r)
		return nil
	})
	return rs, err
}

// putRules rewrites the rules bucket with rs at the dense positions
// 0..len(rs)-1. Rule lists are short, so rewriting is
// simpler than renumbering in place.
func putRules(tx *bolt.Tx, rs []Rule) error {
	encoded := make([][]byte, len(rs))
	for i, r := range rs {
		v, err := encode(r)
		if err != nil {
			return err
		}
		encoded[i] = v
	}
	b := tx.Bucket(bucketRules)
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for i, v := range encoded {
		if err := b.Put(positionKey(uint64(i)), v); err != nil {
			return err
		}
	}
	return nil
}
