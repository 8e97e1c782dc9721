package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-registry/berth/store"
)

const (
	initialAdminName    = "admin"
	initialPasswordFile = store.InitialPasswordFile
	initialPasswordLen  = 24 // base62: about 143 bits
	base62              = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// initialMu serialises EnsureInitialAdmin within the process (only one
// process can have the store open): two calls must not write the password
// file in turn and leave it holding the loser's password.
var initialMu sync.Mutex

// EnsureInitialAdmin gives a data directory without users its first account,
// so a fresh `berth serve` can be logged into: it creates the admin user
// "admin" with a random password and writes the password to
// DATA/initial-admin-password (mode 0600). When any user exists it does
// nothing.
//
// The file is written and synced before the user is created, and removed
// when the user cannot be: a full disk leaves neither an admin whose
// password nobody knows nor a file that claims to hold it.
//
// The password goes to out only when showPassword (out is a terminal):
// anything else — the journal, `docker logs` — would keep it. Otherwise out
// gets the path of the file. Either way the message ends with the command
// that changes the password, with the --data it needs.
func EnsureInitialAdmin(s *store.Store, out io.Writer, showPassword bool) error {
	initialMu.Lock()
	defer initialMu.Unlock()
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
	path := store.InitialPasswordPath(s.Dir())
	if err := writeSecretFile(path, []byte(password+"\n")); err != nil {
		return fmt.Errorf("no user created: %w", err)
	}
	err = s.AddUser(store.User{Name: initialAdminName, PasswordHash: hash, Admin: true})
	if err != nil {
		os.Remove(path)
		if errors.Is(err, store.ErrUserExists) {
			return nil
		}
		return fmt.Errorf("create the initial admin: %w", err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	change := DataCommand(s.Dir(), "user passwd "+initialAdminName)
	if showPassword {
		fmt.Fprintf(out, "created user %s with password %s\n", initialAdminName, password)
		fmt.Fprintf(out, "(also in %s; change it with: %s)\n", path, change)
		return nil
	}
	fmt.Fprintf(out, "created user %s; its password is in %s (readable by this user only)\n", initialAdminName, path)
	fmt.Fprintf(out, "change it with: %s\n", change)
	return nil
}

// DataCommand returns the command line of berth subcommand cmd on the data
// directory dir, for hints: "berth --data /var/lib/berth user passwd admin".
// dir is made absolute, so the hint works from any directory.
func DataCommand(dir, cmd string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "berth --data " + shellQuote(dir) + " " + cmd
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters paths usually have.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
// path exists with wider permissions from an earlier run, and syncs it. On
// error no file is left at path.
func writeSecretFile(path string, data []byte) (err error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return store.SyncDir(filepath.Dir(path))
}
