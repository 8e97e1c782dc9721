package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrSigningKeyInvalid is returned by PutSigningKeyIfAbsent for a key
// without an ID or key bytes.
var ErrSigningKeyInvalid = errors.New("invalid signing key")

// SigningKey is a token signing key as stored: the store only persists the
// bytes; parsing and signing live in server/auth.
type SigningKey struct {
	ID         string // kid
	PrivateDER []byte // PKCS #8
	Created    time.Time
}

// SigningKey returns the current signing key (the newest, should there ever
// be several), with ok false when none exists yet.
func (s *Store) SigningKey() (key SigningKey, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		key, ok, err = currentSigningKey(tx)
		return err
	})
	return key, ok, err
}

// PutSigningKeyIfAbsent stores k when no signing key exists and returns it;
// when one exists it returns that one and ignores k. Check and write happen
// in one transaction, so two processes starting at once agree on one key.
// Created is set when zero. It returns ErrSigningKeyInvalid for a key
// without ID or PrivateDER.
func (s *Store) PutSigningKeyIfAbsent(k SigningKey) (SigningKey, error) {
	if k.ID == "" || len(k.PrivateDER) == 0 {
		return SigningKey{}, ErrSigningKeyInvalid
	}
	if k.Created.IsZero() {
		k.Created = s.now().UTC()
	}
	v, err := encode(k)
	if err != nil {
		return SigningKey{}, err
	}
	var out SigningKey
	err = s.db.Update(func(tx *bolt.Tx) error {
		existing, ok, err := currentSigningKey(tx)
		if err != nil || ok {
			out = existing
			return err
		}
		out = k
		return tx.Bucket(bucketKeys).Put([]byte(k.ID), v)
	})
	return out, err
}

func currentSigningKey(tx *bolt.Tx) (SigningKey, bool, error) {
	var newest SigningKey
	found := false
	err := tx.Bucket(bucketKeys).ForEach(func(id, v []byte) error {
		var k SigningKey
		if err := decode(v, &k); err != nil {
			return fmt.Errorf("signing key %q: %w", id, err)
		}
		if !found || k.Created.After(newest.Created) {
			newest, found = k, true
		}
		return nil
	})
	return newest, found, err
}
