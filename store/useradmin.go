package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// ErrLastAdmin is returned when a change would leave no admin: nobody could
// then manage users or rules outside the command line.
var ErrLastAdmin = errors.New("the last admin cannot lose the admin right")

// SetAdmin makes the user called name an admin (admin true) or takes the
// right away. It changes nothing else: the password, the Epoch and the
// user's sign-ins stay, and a request checks the right afresh, so the change
// holds from the next request on (an access token already issued keeps the
// scopes it was given until it expires). It returns ErrUserUnknown, and
// ErrLastAdmin when it would take the right from the only admin. Setting
// what is already set is not an error.
func (s *Store) SetAdmin(name string, admin bool) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		if err != nil {
			return err
		}
		if u.Admin == admin {
			return nil
		}
		if !admin {
			n, err := countAdmins(tx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastAdmin
			}
		}
		u.Admin = admin
		return putUser(tx, u)
	})
}

func countAdmins(tx *bolt.Tx) (int, error) {
	n := 0
	err := tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
		u, err := decodeUser(v)
		if err == nil && u.Admin {
			n++
		}
		return err
	})
	return n, err
}
