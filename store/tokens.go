package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrTokenUnknown is returned for a refresh token that does not exist or no
// longer counts: its user was deleted or changed password, or it expired.
var ErrTokenUnknown = errors.New("refresh token unknown")

// ErrSessionUnknown is returned by RevokeRefreshTokens for an ID that names
// none of the user's refresh tokens, or more than one.
var ErrSessionUnknown = errors.New("no such session")

// DefaultRefreshTokenLifetime is how long a refresh token lives when its
// record has no Expires: the records written before lifetimes existed.
const DefaultRefreshTokenLifetime = 90 * 24 * time.Hour

// lastUsedGranularity is how stale RefreshToken.LastUsed may be: a token
// redeemed again within it is not written again, so a client that fetches
// a token for every pull does not cost a meta.db commit each time.
const lastUsedGranularity = time.Minute

// RefreshToken is what the store keeps about a refresh token, under the
// SHA-256 of the token so a copy of meta.db does not hold usable tokens.
type RefreshToken struct {
	User     string
	Service  string
	Epoch    uint64 // the user's Epoch when the token was issued
	Created  time.Time
	Expires  time.Time `json:",omitzero"`  // zero in old records: Created + DefaultRefreshTokenLifetime
	LastUsed time.Time `json:",omitzero"`  // zero until first redeemed; up to a minute stale
	Client   string    `json:",omitempty"` // what the client called itself (client_id), if anything

	// ID names the token in listings and `berth user revoke`: the first 8
	// bytes of its hash in hex. It is filled in on reading, not stored, and
	// says nothing about the token itself.
	ID string `json:"-"`
}

// ExpiresAt returns when t stops being accepted.
func (t RefreshToken) ExpiresAt() time.Time {
	if t.Expires.IsZero() {
		return t.Created.Add(DefaultRefreshTokenLifetime)
	}
	return t.Expires
}

// sessionIDLen is the length in bytes of the hash prefix a session ID shows.
const sessionIDLen = 8

func sessionID(hash []byte) string { return hex.EncodeToString(hash[:min(len(hash), sessionIDLen)]) }

// PutRefreshToken stores t under hash. Created is set when zero. When the
// user then holds more than maxPerUser tokens (maxPerUser > 0), the oldest
// are deleted in the same transaction and their number returned. It returns
// ErrUserUnknown when t.User does not exist, so a token cannot outlive a
// user deleted while it was being issued.
func (s *Store) PutRefreshToken(hash [32]byte, t RefreshToken, maxPerUser int) (revoked int, err error) {
	if t.Created.IsZero() {
		t.Created = s.now().UTC()
	}
	v, err := encode(t)
	if err != nil {
		return 0, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, t.User); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokens).Put(hash[:], v); err != nil {
			return err
		}
		if maxPerUser <= 0 {
			return nil
		}
		held, err := refreshTokensOf(tx, t.User)
		if err != nil {
			return err
		}
		// Oldest first; the new token is the newest, so it is never the one
		// dropped.
		sort.Slice(held, func(i, j int) bool { return held[i].token.Created.Before(held[j].token.Created) })
		for len(held) > maxPerUser {
			if !bytes.Equal(held[0].key, hash[:]) {
				if err := tx.Bucket(bucketTokens).Delete(held[0].key); err != nil {
					return err
				}
				revoked++
			}
			held = held[1:]
		}
		return nil
	})
	return revoked, err
}

// RefreshToken returns the refresh token stored under hash. It returns
// ErrTokenUnknown when there is none, when its user no longer exists, or
// when the user's Epoch differs from the token's (the password changed).
// It does not look at the expiry; UseRefreshToken does.
func (s *Store) RefreshToken(hash [32]byte) (RefreshToken, error) {
	var t RefreshToken
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = validRefreshToken(tx, hash[:])
		return err
	})
	if err != nil {
		return RefreshToken{}, err
	}
	return t, nil
}

// UseRefreshToken returns the refresh token stored under hash for a
// redemption at now, and records now as its last use (at most once per
// minute). A token past its expiry is deleted and, like one that does not
// count any more (see RefreshToken), answered with ErrTokenUnknown.
func (s *Store) UseRefreshToken(hash [32]byte, now time.Time) (RefreshToken, error) {
	t, err := s.RefreshToken(hash)
	if err != nil {
		return RefreshToken{}, err
	}
	expired := !now.Before(t.ExpiresAt())
	if !expired && now.Sub(t.LastUsed) < lastUsedGranularity {
		return t, nil // the common case: no write
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		// Read again: the token may have been revoked since.
		cur, err := validRefreshToken(tx, hash[:])
		if err != nil {
			return err
		}
		if expired {
			// Commit the delete: returning an error here would roll it back.
			return tx.Bucket(bucketTokens).Delete(hash[:])
		}
		cur.LastUsed = now.UTC()
		v, err := encode(cur)
		if err != nil {
			return err
		}
		t = cur
		return tx.Bucket(bucketTokens).Put(hash[:], v)
	})
	if err != nil {
		return RefreshToken{}, err
	}
	if expired {
		return RefreshToken{}, ErrTokenUnknown
	}
	return t, nil
}

// RefreshTokensOf returns the refresh tokens of the user called name that
// are still accepted at now, oldest first, with their IDs. It returns
// ErrUserUnknown when there is no such user.
func (s *Store) RefreshTokensOf(name string, now time.Time) ([]RefreshToken, error) {
	var out []RefreshToken
	err := s.db.View(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		if err != nil {
			return err
		}
		held, err := refreshTokensOf(tx, name)
		if err != nil {
			return err
		}
		for _, h := range held {
			if h.token.Epoch == u.Epoch && now.Before(h.token.ExpiresAt()) {
				out = append(out, h.token)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// RevokeRefreshTokens deletes sessions of the user called name: the
// refresh token or web UI session whose ID is id (see RefreshToken.ID and
// UISessionInfo.ID), or all refresh tokens and web UI sessions when id is
// "" (for a name that is no local user, the web UI sessions of the
// directory user of that name). It returns how many it deleted;
// ErrUserUnknown when there is no such user (and no session of that name),
// and an error wrapping ErrSessionUnknown when id names none of the user's
// sessions.
func (s *Store) RevokeRefreshTokens(name, id string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, name); err != nil {
			// A directory (LDAP) user has no record and no refresh
			// tokens, only web UI sessions.
			if !errors.Is(err, ErrUserUnknown) {
				return err
			}
			if id != "" {
				held, herr := uiSessionsOf(tx, name)
				if herr != nil || len(held) == 0 {
					return errors.Join(herr, err)
				}
				n, err = revokeUISessionByID(tx, name, id, held)
				return err
			}
			if n, err = deleteUISessionsOf(tx, name); err == nil && n == 0 {
				err = fmt.Errorf("%w: %s", ErrUserUnknown, name)
			}
			return err
		}
		held, err := refreshTokensOf(tx, name)
		if err != nil {
			return err
		}
		var doomed [][]byte
		for _, h := range held {
			if id == "" || h.token.ID == id {
				doomed = append(doomed, h.key)
			}
		}
		if id != "" && len(doomed) != 1 {
			web, err := uiSessionsOf(tx, name)
			if err != nil {
				return err
			}
			n, err = revokeUISessionByID(tx, name, id, web)
			return err
		}
		n = len(doomed)
		if id == "" {
			ui, err := deleteUISessionsOf(tx, name)
			if err != nil {
				return err
			}
			n += ui
		}
		return deleteKeys(tx.Bucket(bucketTokens), doomed)
	})
	return n, err
}

// DeleteExpiredRefreshTokens deletes every refresh token that no longer
// counts at now: expired, or left behind by a deleted user or an old
// password (normally deleted with the change, but records restored from an
// older backup may remain). It returns how many it deleted.
func (s *Store) DeleteExpiredRefreshTokens(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		var doomed [][]byte
		err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var t RefreshToken
			if err := decode(v, &t); err != nil {
				return fmt.Errorf("refresh token %s: %w", sessionID(k), err)
			}
			u, err := getUser(tx, t.User)
			if err != nil && !errors.Is(err, ErrUserUnknown) {
				return err
			}
			if err != nil || u.Epoch != t.Epoch || !now.Before(t.ExpiresAt()) {
				doomed = append(doomed, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		n = len(doomed)
		return deleteKeys(tx.Bucket(bucketTokens), doomed)
	})
	return n, err
}

// validRefreshToken reads the token under key and checks its user and
// epoch; see RefreshToken.
func validRefreshToken(tx *bolt.Tx, key []byte) (RefreshToken, error) {
	v := tx.Bucket(bucketTokens).Get(key)
	if v == nil {
		return RefreshToken{}, ErrTokenUnknown
	}
	var t RefreshToken
	if err := decode(v, &t); err != nil {
		return RefreshToken{}, fmt.Errorf("refresh token: %w", err)
	}
	u, err := getUser(tx, t.User)
	if errors.Is(err, ErrUserUnknown) || (err == nil && u.Epoch != t.Epoch) {
		return RefreshToken{}, ErrTokenUnknown
	}
	if err != nil {
		return RefreshToken{}, err
	}
	t.ID = sessionID(key)
	return t, nil
}

// heldToken is a refresh token with its key.
type heldToken struct {
	key   []byte
	token RefreshToken
}

// refreshTokensOf returns every stored refresh token of user, whatever its
// epoch or expiry. Refresh tokens are few (at most the per-user cap for
// each user), and issuing one is rare, so a scan is cheaper to keep right
// than a second index.
func refreshTokensOf(tx *bolt.Tx, user string) ([]heldToken, error) {
	var out []heldToken
	err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		var t RefreshToken
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("refresh token %s: %w", sessionID(k), err)
		}
		if t.User == user {
			t.ID = sessionID(k)
			out = append(out, heldToken{key: bytes.Clone(k), token: t})
		}
		return nil
	})
	return out, err
}

// deleteRefreshTokensOf deletes every refresh token of user.
func deleteRefreshTokensOf(tx *bolt.Tx, user string) error {
	held, err := refreshTokensOf(tx, user)
	if err != nil {
		return err
	}
	keys := make([][]byte, len(held))
	for i, h := range held {
		keys[i] = h.key
	}
	return deleteKeys(tx.Bucket(bucketTokens), keys)
}

func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
