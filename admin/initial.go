package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-registry/berth/store"
)

const (
	initialAdminName    = "admin"
	initialPasswordFile = store.InitialPasswordFile
	initialPasswordLen  = 24 // base62: about 143 bits
	base62              = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// EnsureInitialAdmin gives a data directory without users its first account,
// so a fresh `berth serve` can be logged into: it creates the admin user
// "admin" with a random password, writes the password to
// DATA/initial-admin-password (mode 0600) and prints it once to out. When
// any user exists it does nothing. If another process creates a user at the
// same moment, the first one wins and the other does nothing.
//
// The password is printed before the file is written, so a failing write
// (reported as the error) cannot leave an admin nobody knows the password of.
func EnsureInitialAdmin(s *store.Store, out io.Writer) error {
	n, err := s.UserCount()
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	password := randomPassword()
	hash, err := hashNewPassword([]byte(password))
	if err != nil {
		return err
	}
	err = s.AddUser(store.User{Name: initialAdminName, PasswordHash: hash, Admin: true})
	if errors.Is(err, store.ErrUserExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the initial admin: %w", err)
	}
	path := store.InitialPasswordPath(s.Dir())
	fmt.Fprintf(out, "created user %s with password %s\n", initialAdminName, password)
	fmt.Fprintf(out, "(also in %s; change it with: berth user passwd %s)\n", path, initialAdminName)
	return writeSecretFile(path, []byte(password+"\n"))
}

// randomPassword returns initialPasswordLen characters from base62, drawn
// from crypto/rand without modulo bias.
func randomPassword() string {
	return randomString(initialPasswordLen, base62)
}

func randomString(n int, alphabet string) string {
	// Rejection sampling: bytes at or above the largest multiple of
	// len(alphabet) would favour the first letters, so they are drawn again.
	limit := byte(256 - 256%len(alphabet))
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:]) // never fails; see crypto/rand.Read
		for _, b := range buf {
			if b < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// writeSecretFile writes data to path readable by the owner only, also when
// path exists with wider permissions from an earlier run.
func writeSecretFile(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
