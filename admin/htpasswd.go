package admin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
//
// The CLI reads File (- for stdin) and sends its content as Data.
type UserImportHtpasswd struct {
	File      string `arg:"FILE" json:"-"`
	Overwrite bool   `flag:"overwrite" usage:"replace the password of users that exist already (else they are refused by name)" json:"overwrite,omitempty"`
	Data      []byte `json:"data"`
}

// Imported is the result of an import: one line per user, in order.
type Imported struct {
	Lines []string `json:"lines"`
}

var UserImportHtpasswdOp = register(&Op[UserImportHtpasswd, Imported]{
	Name: "user import-htpasswd",
	Prepare: func(req *UserImportHtpasswd, c Client) error {
		var err error
		req.Data, err = readInputFile(req.File, c, "htpasswd file")
		return err
	},
	Do: func(_ context.Context, env *Env, _ *Task, req UserImportHtpasswd) (*Imported, error) {
		entries, refused, err := parseHtpasswd(bytes.NewReader(req.Data))
		if err != nil {
			return nil, err
		}
		res := &Imported{Lines: []string{}}
		imported := 0
		for _, e := range entries {
			r, err := importUser(env.Store, e.Name, []byte(e.Hash), req.Overwrite, res)
			if err != nil {
				return res, err
			}
			if r != nil {
				r.Line = e.Line
				refused = append(refused, *r)
				continue
			}
			imported++
		}
		return res, refusedError(imported, refused)
	},
	Render: renderImported,
})

func renderImported(w Output, res *Imported) error {
	for _, l := range res.Lines {
		if _, err := fmt.Fprintln(w.Out, l); err != nil {
			return err
		}
	}
	return nil
}

// readInputFile reads the file an import names, in the CLI process: a
// relative path means the same with the server up or down. "-" is stdin.
func readInputFile(path string, c Client, what string) ([]byte, error) {
	r := c.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", what, maxConfigSize>>20)
	}
	return data, nil
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

// importUser adds a user with hash, or, with overwrite, sets an existing
// user's password to it; without overwrite an existing user with another
// password is refused (the refusal is returned), since replacing a password
// signs its user out everywhere. An unchanged hash is left alone, so
// re-running an import does not log everyone out.
func importUser(s *store.Store, name string, hash []byte, overwrite bool, res *Imported) (*refusal, error) {
	u, err := s.User(name)
	switch {
	case err == nil && string(u.PasswordHash) == string(hash):
		res.Lines = append(res.Lines, "unchanged "+name)
		return nil, nil
	case err == nil && !overwrite:
		return &refusal{Name: name, Reason: "exists with another password; --overwrite replaces it"}, nil
	case err == nil:
		if err := s.SetPassword(name, hash); err != nil {
			return nil, fmt.Errorf("set the password of %s: %w", name, userError(name, err))
		}
		res.Lines = append(res.Lines, "updated the password of "+name)
		return nil, nil
	case !errors.Is(err, store.ErrUserUnknown):
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	if err := s.AddUser(store.User{Name: name, PasswordHash: hash}); err != nil {
		return nil, fmt.Errorf("add %s: %w", name, userError(name, err))
	}
	res.Lines = append(res.Lines, "added user "+name)
	return nil, nil
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
