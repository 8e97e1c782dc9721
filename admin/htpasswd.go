package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-registry/berth/store"
)

// userImportHtpasswdCommand imports an htpasswd file read from stdin (the
// CLI opens FILE, so a relative path means the same with serve up or down).
//
// Entries with bcrypt hashes are imported: new names become (non-admin)
// users, existing users get the file's password. Every other entry — MD5
// ($apr1$), SHA-1 ({SHA}), crypt, plain text, malformed lines — is refused by
// name (its hash is never printed). The good entries are imported anyway, and
// the command then fails with one line listing the refused ones, so that a
// script notices that not everyone was migrated.
var userImportHtpasswdCommand = Command{
	Name:  "user import-htpasswd",
	Usage: "FILE",
	Run:   runUserImportHtpasswd,
}

// maxHtpasswdLine bounds one line of an htpasswd file.
const maxHtpasswdLine = 64 << 10

// importedUser is a user to import: a valid name and a bcrypt hash, from
// line Line (0 when the source has no lines to point at).
type importedUser struct {
	Name string
	Hash string
	Line int
}

// refusal is an entry left out of an import, and why.
type refusal struct {
	Name   string // "" when the line has none
	Line   int    // 0 when not from a numbered line
	Reason string
}

func (r refusal) String() string {
	switch {
	case r.Name == "":
		return fmt.Sprintf("line %d (%s)", r.Line, r.Reason)
	case r.Line == 0:
		return fmt.Sprintf("%s (%s)", r.Name, r.Reason)
	}
	return fmt.Sprintf("%s (line %d: %s)", r.Name, r.Line, r.Reason)
}

// parseHtpasswd reads htpasswd lines "name:hash", where nginx allows a third
// ":comment" field. Empty lines and lines starting with '#' are skipped, as
// Apache does. A name seen before is refused: Apache would use the first.
// The error is for input that cannot be read at all.
func parseHtpasswd(r io.Reader) ([]importedUser, []refusal, error) {
	var entries []importedUser
	var refused []refusal
	seen := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxHtpasswdLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, found := strings.Cut(line, ":")
		if !found {
			refused = append(refused, refusal{Line: n, Reason: "no ':' between name and hash"})
			continue
		}
		if err := store.ValidateUserName(name); err != nil {
			refused = append(refused, refusal{Line: n, Reason: err.Error()})
			continue
		}
		if first, dup := seen[name]; dup {
			refused = append(refused, refusal{Name: name, Line: n, Reason: fmt.Sprintf("repeats line %d", first)})
			continue
		}
		seen[name] = n
		hash, _, _ := strings.Cut(rest, ":")
		if err := checkBcryptHash(hash); err != nil {
			refused = append(refused, refusal{Name: name, Line: n, Reason: err.Error()})
			continue
		}
		entries = append(entries, importedUser{Name: name, Hash: hash, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read htpasswd: %w", err)
	}
	return entries, refused, nil
}

func runUserImportHtpasswd(_ context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	entries, refused, err := parseHtpasswd(stdio.In)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := importUser(env.Store, e.Name, []byte(e.Hash), stdio); err != nil {
			return err
		}
	}
	return refusedError(len(entries), refused)
}

// importUser adds a user with hash, or sets an existing user's password to
// it. An unchanged hash is left alone, so re-running an import does not log
// everyone out (a password change revokes refresh tokens).
func importUser(s *store.Store, name string, hash []byte, stdio Stdio) error {
	u, err := s.User(name)
	switch {
	case err == nil && string(u.PasswordHash) == string(hash):
		fmt.Fprintf(stdio.Out, "unchanged %s\n", name)
		return nil
	case err == nil:
		if err := s.SetPassword(name, hash); err != nil {
			return fmt.Errorf("set the password of %s: %w", name, userError(name, err))
		}
		fmt.Fprintf(stdio.Out, "updated the password of %s\n", name)
		return nil
	case !errors.Is(err, store.ErrUserUnknown):
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := s.AddUser(store.User{Name: name, PasswordHash: hash}); err != nil {
		return fmt.Errorf("add %s: %w", name, userError(name, err))
	}
	fmt.Fprintf(stdio.Out, "added user %s\n", name)
	return nil
}

// refusedError is nil when nothing was refused, else one line naming every
// refused entry.
func refusedError(imported int, refused []refusal) error {
	if len(refused) == 0 {
		return nil
	}
	names := make([]string, len(refused))
	for i, r := range refused {
		names[i] = r.String()
	}
	return fmt.Errorf("imported %d, refused %d: %s", imported, len(refused), strings.Join(names, ", "))
}
