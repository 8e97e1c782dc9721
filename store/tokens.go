package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrTokenUnknown is returned for a refresh token that does not exist or no
// longer counts: its user was deleted or changed password.
var ErrTokenUnknown = errors.New("refresh token unknown")

// RefreshToken is what the store keeps about a refresh token, under the
// SHA-256 of the token so a copy of meta.db does not hold usable tokens.
type RefreshToken struct {
	User    string
	Service string
	Epoch   uint64 // the user's Epoch when the token was issued
	Created time.Time
}

// PutRefreshToken stores t under hash. Created is set when zero. It returns
// ErrUserUnknown when t.User does not exist, so a token cannot outlive a
// user deleted while it was being issued.
func (s *Store) PutRefreshToken(hash [32]byte, t RefreshToken) error {
	if t.Created.IsZero() {
		t.Created = s.now().UTC()
	}
	v, err := encode(t)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, t.User); err != nil {
			return err
		}
		return tx.Bucket(bucketTokens).Put(hash[:], v)
	})
}

// RefreshToken returns the refresh token stored under hash. It returns
// ErrTokenUnknown when there is none, when its user no longer exists, or
// when the user's Epoch differs from the token's (the password changed).
func (s *Store) RefreshToken(hash [32]byte) (RefreshToken, error) {
	var t RefreshToken
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(hash[:])
		if v == nil {
			return ErrTokenUnknown
		}
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("refresh token: %w", err)
		}
		u, err := getUser(tx, t.User)
		if errors.Is(err, ErrUserUnknown) || (err == nil && u.Epoch != t.Epoch) {
			return ErrTokenUnknown
		}
		return err
	})
	if err != nil {
		return RefreshToken{}, err
	}
	return t, nil
}

// deleteRefreshTokensOf deletes every refresh token of user. Refresh tokens
// are few (one per login) and users change rarely, so a scan is cheaper to
// keep right than a second index.
func deleteRefreshTokensOf(tx *bolt.Tx, user string) error {
	b := tx.Bucket(bucketTokens)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var t RefreshToken
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("refresh token %x: %w", k, err)
		}
		if t.User == user {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
