package admin

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/store"
)

// testHash hashes pw at bcrypt's minimum cost, to keep tests fast; the
// commands accept any cost.
func testHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestUserCommands_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	alice, bob := testHash(t, "alice-pw"), testHash(t, "bob-pw")
	steps := []struct {
		name    string
		command string
		args    Args
		wantOut string
		wantErr string
	}{
		{"add admin", "user add", Args{Words: []string{"alice"}, Flags: map[string]string{"password-hash": alice, "admin": "true"}}, "added admin alice\n", ""},
		{"add user", "user add", Args{Words: []string{"bob"}, Flags: map[string]string{"password-hash": bob}}, "added user bob\n", ""},
		{"add again", "user add", Args{Words: []string{"bob"}, Flags: map[string]string{"password-hash": bob}}, "", "user bob already exists"},
		{"add bad name", "user add", Args{Words: []string{"a:b"}, Flags: map[string]string{"password-hash": bob}}, "", `invalid user name: "a:b": character ":" at offset 1 is not allowed (only a-z, 0-9, '.', '_', '-')`},
		{"add a name inside another's namespace", "user add", Args{Words: []string{"alice/team"}, Flags: map[string]string{"password-hash": bob}}, "", `invalid user name: "alice/team" contains '/': an account's name cannot reach into another's namespace`},
		{"add without hash", "user add", Args{Words: []string{"carol"}}, "", "no password hash given"},
		{"add with md5 hash", "user add", Args{Words: []string{"carol"}, Flags: map[string]string{"password-hash": "$apr1$abc$def"}}, "", "password hash: MD5 ($apr1$), not bcrypt"},
		{"add bad admin flag", "user add", Args{Words: []string{"carol"}, Flags: map[string]string{"password-hash": bob, "admin": "maybe"}}, "", `--admin: "maybe" is not true or false`},
		{"add two names", "user add", Args{Words: []string{"a", "b"}}, "", "usage: berth user add NAME [--admin] [--password-stdin]"},
		{"passwd", "user passwd", Args{Words: []string{"bob"}, Flags: map[string]string{"password-hash": alice}}, "changed the password of bob\n", ""},
		{"passwd unknown", "user passwd", Args{Words: []string{"nobody"}, Flags: map[string]string{"password-hash": alice}}, "", "no user nobody"},
		{"del unknown", "user del", Args{Words: []string{"nobody"}}, "", "no user nobody"},
		{"del", "user del", Args{Words: []string{"bob"}}, "deleted user bob\n", ""},
		{"list with argument", "user list", Args{Words: []string{"x"}}, "", "usage: berth user list"},
	}
	for _, st := range steps {
		got := tw.run(t, st.command, st.args, "")
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: %s %q: got\n%s\nwant stdout %q, error %q", st.name, st.command, st.args.Words, got, st.wantOut, st.wantErr)
		}
	}

	// The serving process sees the changes at once: no restart.
	u, err := tw.remote.User("alice")
	if err != nil || !u.Admin {
		t.Errorf("server's store: alice = %+v, %v; want an admin", u, err)
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("alice-pw")); err != nil {
		t.Errorf("alice's stored hash does not check: %v", err)
	}
	if _, err := tw.remote.User("bob"); !errors.Is(err, store.ErrUserUnknown) {
		t.Errorf("bob after del: %v, want ErrUserUnknown", err)
	}
}

// TestUserList_SameBothWays lists one data directory through the socket,
// then with the server stopped: created times included, the bytes match.
func TestUserList_SameBothWays(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, u := range []store.User{{Name: "zed"}, {Name: "admin", Admin: true}, {Name: "mia"}} {
		u.PasswordHash = []byte(testHash(t, "pw"))
		if err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	stop := mustServe(t, s)
	remote := run(t, dir, "user list", Args{}, "")
	stop()
	mustCheckClose(t, s)
	local := run(t, dir, "user list", Args{}, "")
	if local != remote {
		t.Fatalf("output differs\nlocal:\n%s\nthrough the socket:\n%s", local, remote)
	}
	want := regexp.MustCompile(`^NAME   ADMIN  CREATED
admin  yes    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ
mia    no     \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ
zed    no     \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ
$`)
	if !want.MatchString(local.out) || local.err != "" {
		t.Errorf("user list:\n%s", local)
	}
}

func TestUserPasswd_ForgetsInitialPassword(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    Args
	}{
		{"passwd", "user passwd", Args{Words: []string{"admin"}, Flags: map[string]string{"password-hash": "HASH"}}},
		{"del", "user del", Args{Words: []string{"admin"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwin(t)
			hash := testHash(t, "new")
			if v, ok := tc.args.Flag("password-hash"); ok && v == "HASH" {
				tc.args.Flags = map[string]string{"password-hash": hash}
			}
			for _, dir := range []string{tw.local, tw.remote.Dir()} {
				seedInitialAdmin(t, dir, tw.remote)
			}
			got := tw.run(t, tc.command, tc.args, "")
			if got.err != "" || !strings.Contains(got.out, "removed initial-admin-password") {
				t.Errorf("%s admin:\n%s", tc.command, got)
			}
			for _, dir := range []string{tw.local, tw.remote.Dir()} {
				if _, err := os.Stat(filepath.Join(dir, initialPasswordFile)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still has %s (%v)", dir, initialPasswordFile, err)
				}
			}
		})
	}
}

// seedInitialAdmin runs EnsureInitialAdmin on dir, through the served
// store when dir is its directory, else on a store opened for the moment.
func seedInitialAdmin(t *testing.T, dir string, served *store.Store) {
	t.Helper()
	s := served
	if dir != served.Dir() {
		var err error
		if s, err = store.Open(dir, store.Options{}); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	if err := EnsureInitialAdmin(s, &strings.Builder{}, false); err != nil {
		t.Fatal(err)
	}
}
