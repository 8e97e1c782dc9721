package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors of the users records.
var (
	ErrUserExists        = errors.New("user already exists")
	ErrUserUnknown       = errors.New("user unknown")
	ErrUserInvalid       = errors.New("invalid user name")
	ErrPasswordHashEmpty = errors.New("empty password hash")
)

// maxUserNameLength bounds an account name in bytes, as docker_auth's
// htpasswd-style accounts are in practice; it also bounds cache keys.
const maxUserNameLength = 255

// User is an account that can sign in. The zero User stands for the anonymous
// caller where a User is expected (its Name is "").
type User struct {
	Name         string
	PasswordHash []byte // bcrypt
	Admin        bool
	// Epoch changes on every password change and on every (re)creation, and
	// is never reused for the same name, so credential caches and refresh
	// tokens bound to an epoch die with the password they were made for.
	Epoch   uint64
	Created time.Time
}

// ValidateUserName checks name against the one grammar of account names: a
// single component of a repository name,
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
//
// at most 255 bytes. A name therefore never contains '/', so no account can
// push into another's namespace (`alice/team` inside `alice/`), and
// `<account>/...` is always a valid repository name; nor ':' (Basic auth),
// upper case, spaces or control characters. It returns an error wrapping
// ErrUserInvalid that says what is wrong.
func ValidateUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrUserInvalid)
	case len(name) > maxUserNameLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrUserInvalid, maxUserNameLength)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("%w: %q contains '/': an account's name cannot reach into another's namespace", ErrUserInvalid, name)
	}
	if problem := componentProblem(name, 0, "a-z, 0-9, '.', '_', '-'"); problem != "" {
		return fmt.Errorf("%w: %q: %s", ErrUserInvalid, name, problem)
	}
	return nil
}

// AddUser creates u. The store assigns Epoch, and Created when it is zero.
// It returns an error wrapping ErrUserInvalid for a bad name, ErrPasswordHashEmpty
// when PasswordHash is empty, and ErrUserExists when the name is taken. The
// store does not check that PasswordHash is bcrypt; callers hash.
func (s *Store) AddUser(u User) error {
	if err := ValidateUserName(u.Name); err != nil {
		return err
	}
	if len(u.PasswordHash) == 0 {
		return ErrPasswordHashEmpty
	}
	if u.Created.IsZero() {
		u.Created = s.now().UTC()
	}
	return s.updateAuth(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(u.Name)) != nil {
			return fmt.Errorf("%w: %s", ErrUserExists, u.Name)
		}
		if orgs := tx.Bucket(bucketOrgs); orgs != nil && orgs.Get([]byte(u.Name)) != nil {
			return fmt.Errorf("%w: %s is an organization", ErrNamespaceUsed, u.Name)
		}
		epoch, err := users.NextSequence()
		if err != nil {
			return err
		}
		u.Epoch = epoch
		// A directory (LDAP) user's web UI sessions end when a local
		// user takes the name: the name now means someone else.
		if _, err := deleteUISessionsOf(tx, u.Name); err != nil {
			return err
		}
		return putUser(tx, u)
	})
}

// User returns the user called name, or ErrUserUnknown.
func (s *Store) User(name string) (User, error) {
	var u User
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(tx, name)
		return err
	})
	return u, err
}

// Users returns every user, sorted by name.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// UserCount returns how many users exist.
func (s *Store) UserCount() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// SetPassword replaces the password hash of the user called name, gives the
// user a new Epoch and deletes the user's refresh tokens, all in one
// transaction. It returns ErrUserUnknown or ErrPasswordHashEmpty.
func (s *Store) SetPassword(name string, hash []byte) error {
	if len(hash) == 0 {
		return ErrPasswordHashEmpty
	}
	return s.updateAuth(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		if err != nil {
			return err
		}
		if u.Epoch, err = tx.Bucket(bucketUsers).NextSequence(); err != nil {
			return err
		}
		u.PasswordHash = hash
		if err := putUser(tx, u); err != nil {
			return err
		}
		if _, err := deleteUISessionsOf(tx, name); err != nil {
			return err
		}
		return deleteRefreshTokensOf(tx, name)
	})
}

// DeleteUser deletes the user called name and the user's refresh tokens. It
// returns ErrUserUnknown.
func (s *Store) DeleteUser(name string) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: %s", ErrUserUnknown, name)
		}
		if err := users.Delete([]byte(name)); err != nil {
			return err
		}
		if err := forgetUser(tx, name); err != nil {
			return err
		}
		if _, err := deleteUISessionsOf(tx, name); err != nil {
			return err
		}
		return deleteRefreshTokensOf(tx, name)
	})
}

func getUser(tx *bolt.Tx, name string) (User, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(name))
	if v == nil {
		return User{}, fmt.Errorf("%w: %s", ErrUserUnknown, name)
	}
	u, err := decodeUser(v)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
}

func putUser(tx *bolt.Tx, u User) error {
	v, err := encode(u)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketUsers).Put([]byte(u.Name), v)
}

func decodeUser(v []byte) (User, error) {
	var u User
	err := decode(v, &u)
	return u, err
}
