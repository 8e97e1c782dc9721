package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Web UI sessions, kept in meta.db so a restart keeps them. Only the
// SHA-256 of a session id is stored: a copy of meta.db does not sign anyone
// in.
//
//	uisessions      <sha256 of id, hex> → user, epoch, expires; for a directory
//	                user's: its groups, when the directory was last asked, which LDAP settings
//	uisessionusers  <user>\x00<sha256 of id, hex> → {}   to count and revoke a user's sessions
var (
	bucketUISessions     = []byte("uisessions")
	bucketUISessionUsers = []byte("uisessionusers")
)

// ErrUISessionUnknown is returned for a session that does not exist or has
// expired.
var ErrUISessionUnknown = errors.New("ui session unknown")

const (
	// MaxUISessionsPerUser bounds one user's sessions; past it the one
	// closest to expiry goes.
	MaxUISessionsPerUser = 32
	// MaxUISessions bounds all sessions, so a flood of sign-ins cannot
	// grow meta.db without end.
	MaxUISessions = 10000
)

// UISession is one web UI sign-in. A local user's is bound to the user's
// Epoch (see User.Epoch): a session whose epoch no longer matches is
// revoked. A directory (LDAP) user's has Directory set and Epoch 0, and
// keeps what the UI re-checks it against: the user's groups as of the
// last time the directory was asked (Checked), and which LDAP settings
// that was under (LDAPConfig, an identifier the UI compares). The fields
// after Expires are absent from records written before directory
// sessions existed, which therefore load as local sessions.
type UISession struct {
	User       string    `json:"user"`
	Epoch      uint64    `json:"epoch"`
	Expires    time.Time `json:"expires"`
	Directory  bool      `json:"directory,omitempty"`
	Groups     []string  `json:"groups,omitempty"`
	Checked    time.Time `json:"checked,omitzero"`
	LDAPConfig string    `json:"ldap_config,omitempty"`
}

func uiSessionKey(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return []byte(hex.EncodeToString(sum[:]))
}

// CreateUISession stores sess under id. Expired sessions are pruned; past
// MaxUISessionsPerUser of the user's or MaxUISessions in all, the ones
// closest to expiry go.
func (s *Store) CreateUISession(id string, sess UISession, now time.Time) error {
	if id == "" || sess.User == "" {
		return fmt.Errorf("create ui session: empty id or user")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := pruneUISessions(tx, now, sess.User); err != nil {
			return err
		}
		k := uiSessionKey(id)
		if err := putRecord(tx, bucketUISessions, k, sess); err != nil {
			return err
		}
		return tx.Bucket(bucketUISessionUsers).Put(key(sess.User, string(k)), nil)
	})
}

// pruneUISessions deletes expired sessions, then the ones closest to expiry
// while user holds MaxUISessionsPerUser or all hold MaxUISessions, leaving
// room for one more.
func pruneUISessions(tx *bolt.Tx, now time.Time, user string) error {
	type held struct {
		key     []byte
		user    string
		expires time.Time
	}
	var live []held
	var doomed []held
	err := tx.Bucket(bucketUISessions).ForEach(func(k, v []byte) error {
		var rec UISession
		if err := decode(v, &rec); err != nil {
			return fmt.Errorf("ui session record: %w", err)
		}
		h := held{bytes.Clone(k), rec.User, rec.Expires}
		if !now.Before(rec.Expires) {
			doomed = append(doomed, h)
		} else {
			live = append(live, h)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Oldest expiry first among the live ones, without sorting everything:
	// drop the soonest until under both bounds.
	count := func(u string) int {
		n := 0
		for _, h := range live {
			if h.user == u {
				n++
			}
		}
		return n
	}
	for len(live) > 0 && (len(live) >= MaxUISessions || count(user) >= MaxUISessionsPerUser) {
		perUser := len(live) < MaxUISessions
		first := -1
		for i, h := range live {
			if perUser && h.user != user {
				continue
			}
			if first < 0 || h.expires.Before(live[first].expires) {
				first = i
			}
		}
		doomed = append(doomed, live[first])
		live = append(live[:first], live[first+1:]...)
	}
	for _, h := range doomed {
		if err := deleteUISession(tx, h.key, h.user); err != nil {
			return err
		}
	}
	return nil
}

func deleteUISession(tx *bolt.Tx, k []byte, user string) error {
	if err := tx.Bucket(bucketUISessionUsers).Delete(key(user, string(k))); err != nil {
		return err
	}
	return tx.Bucket(bucketUISessions).Delete(k)
}

// UISession returns the live session id, or ErrUISessionUnknown.
func (s *Store) UISession(id string, now time.Time) (UISession, error) {
	var rec UISession
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUISessions).Get(uiSessionKey(id))
		if v == nil {
			return ErrUISessionUnknown
		}
		return decode(v, &rec)
	})
	if err != nil {
		return UISession{}, err
	}
	if !now.Before(rec.Expires) {
		return UISession{}, ErrUISessionUnknown
	}
	return rec, nil
}

// RecheckedUISession records a new check of directory session id: the
// user's groups then and when. It returns ErrUISessionUnknown when the
// session is gone (signed out or revoked meanwhile), so a check never
// brings one back.
func (s *Store) RecheckedUISession(id string, groups []string, at time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		k := uiSessionKey(id)
		v := tx.Bucket(bucketUISessions).Get(k)
		if v == nil {
			return ErrUISessionUnknown
		}
		var rec UISession
		if err := decode(v, &rec); err != nil {
			return err
		}
		if !rec.Directory {
			return fmt.Errorf("recheck ui session: not a directory session")
		}
		rec.Groups, rec.Checked = groups, at
		return putRecord(tx, bucketUISessions, k, rec)
	})
}

// DeleteUISession ends session id; an unknown one is no error.
func (s *Store) DeleteUISession(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		k := uiSessionKey(id)
		v := tx.Bucket(bucketUISessions).Get(k)
		if v == nil {
			return nil
		}
		var rec UISession
		if err := decode(v, &rec); err != nil {
			return err
		}
		return deleteUISession(tx, k, rec.User)
	})
}

// deleteUISessionsOf deletes every session of user.
func deleteUISessionsOf(tx *bolt.Tx, user string) (int, error) {
	users := tx.Bucket(bucketUISessionUsers)
	p := prefix(user)
	var ks [][]byte
	c := users.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		ks = append(ks, bytes.Clone(k))
	}
	for _, k := range ks {
		if err := tx.Bucket(bucketUISessions).Delete(k[len(p):]); err != nil {
			return 0, err
		}
		if err := users.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(ks), nil
}

// deleteDirectoryUISessions deletes every directory user's session.
func deleteDirectoryUISessions(tx *bolt.Tx) error {
	type doomed struct {
		key  []byte
		user string
	}
	var ds []doomed
	err := tx.Bucket(bucketUISessions).ForEach(func(k, v []byte) error {
		var rec UISession
		if err := decode(v, &rec); err != nil {
			return fmt.Errorf("ui session record: %w", err)
		}
		if rec.Directory {
			ds = append(ds, doomed{bytes.Clone(k), rec.User})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := deleteUISession(tx, d.key, d.user); err != nil {
			return err
		}
	}
	return nil
}

// UISessionInfo is one live web UI session as `berth user sessions` lists
// it. ID is the first 8 bytes of the stored key (itself the SHA-256 of the
// session's cookie) in hex, the form of a refresh token's ID: it names the
// session for `berth user revoke` and says nothing about the cookie.
type UISessionInfo struct {
	ID        string
	Expires   time.Time
	Directory bool // an LDAP directory user's sign-in
}

// UISessionsOf returns the web UI sessions of the user called name that
// are live at now, soonest expiry first: not expired, and for a local
// user's, still of the user's current epoch (a password change or a
// revoke ends the others). A name with no local user lists its directory
// sessions, if any.
func (s *Store) UISessionsOf(name string, now time.Time) ([]UISessionInfo, error) {
	var out []UISessionInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		local := err == nil
		if err != nil && !errors.Is(err, ErrUserUnknown) {
			return err
		}
		held, err := uiSessionsOf(tx, name)
		if err != nil {
			return err
		}
		for _, h := range held {
			live := now.Before(h.rec.Expires) && (h.rec.Directory || (local && h.rec.Epoch == u.Epoch))
			if live {
				out = append(out, UISessionInfo{ID: h.id(), Expires: h.rec.Expires, Directory: h.rec.Directory})
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out, err
}

// heldUISession is one of a user's session records with its key.
type heldUISession struct {
	key []byte // hex of the SHA-256 of the cookie, as stored
	rec UISession
}

// id is the session's ID (see UISessionInfo): the key is already hex, so
// its first 2*sessionIDLen characters are the hex of the hash's first
// sessionIDLen bytes, the form of sessionID.
func (h heldUISession) id() string { return string(h.key[:min(len(h.key), 2*sessionIDLen)]) }

// uiSessionsOf reads every session record of user, live or not.
func uiSessionsOf(tx *bolt.Tx, user string) ([]heldUISession, error) {
	var out []heldUISession
	p := prefix(user)
	sessions := tx.Bucket(bucketUISessions)
	c := tx.Bucket(bucketUISessionUsers).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		sk := k[len(p):]
		v := sessions.Get(sk)
		if v == nil {
			continue
		}
		var rec UISession
		if err := decode(v, &rec); err != nil {
			return nil, fmt.Errorf("ui session record: %w", err)
		}
		out = append(out, heldUISession{key: bytes.Clone(sk), rec: rec})
	}
	return out, nil
}

// revokeUISessionByID deletes the session of held (user's, from
// uiSessionsOf) whose ID is id and returns 1, or returns an error wrapping
// ErrSessionUnknown when there is none.
func revokeUISessionByID(tx *bolt.Tx, user, id string, held []heldUISession) (int, error) {
	for _, h := range held {
		if h.id() == id {
			return 1, deleteUISession(tx, h.key, user)
		}
	}
	return 0, fmt.Errorf("%w %q for %s", ErrSessionUnknown, id, user)
}
