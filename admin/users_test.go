package admin

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/storetest"
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
	type step struct {
		name    string
		run     func() result
		wantOut string
		wantErr string
	}
	steps := []step{
		{"add admin", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "alice", NewPassword: NewPassword{PasswordHash: alice}, Admin: true}, "")
		}, "added admin alice\n", ""},
		{"add user", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "bob", NewPassword: NewPassword{PasswordHash: bob}}, "")
		}, "added user bob\n", ""},
		{"add again", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "bob", NewPassword: NewPassword{PasswordHash: bob}}, "")
		}, "", "user bob already exists"},
		{"add bad name", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "a:b", NewPassword: NewPassword{PasswordHash: bob}}, "")
		}, "", `invalid user name: "a:b": character ":" at offset 1 is not allowed (only a-z, 0-9, '.', '_', '-')`},
		{"add a name inside another's namespace", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "alice/team", NewPassword: NewPassword{PasswordHash: bob}}, "")
		}, "", `invalid user name: "alice/team" contains '/': an account's name cannot reach into another's namespace`},
		{"add with md5 hash", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "carol", NewPassword: NewPassword{PasswordHash: "$apr1$abc$def"}}, "")
		}, "", "password hash: MD5 ($apr1$), not bcrypt"},
		{"add with empty stdin", func() result {
			return both(t, tw, UserAddOp, UserAdd{Name: "carol", NewPassword: NewPassword{PasswordStdin: true}}, "")
		}, "", "the password is empty"},
		{"passwd", func() result {
			return both(t, tw, UserPasswdOp, UserPasswd{Name: "bob", NewPassword: NewPassword{PasswordHash: alice}}, "")
		}, "changed the password of bob\n", ""},
		{"passwd unknown", func() result {
			return both(t, tw, UserPasswdOp, UserPasswd{Name: "nobody", NewPassword: NewPassword{PasswordHash: alice}}, "")
		}, "", "no user nobody"},
		{"del unknown", func() result { return both(t, tw, UserDelOp, UserDel{Name: "nobody"}, "") }, "", "no user nobody"},
		{"del", func() result { return both(t, tw, UserDelOp, UserDel{Name: "bob"}, "") }, "deleted user bob\n", ""},
	}
	for _, st := range steps {
		got := st.run()
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: got\n%s\nwant stdout %q, error %q", st.name, got, st.wantOut, st.wantErr)
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
	s := storetest.Open(t, dir)
	for _, u := range []store.User{{Name: "zed"}, {Name: "admin", Admin: true}, {Name: "mia"}} {
		u.PasswordHash = []byte(testHash(t, "pw"))
		if err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	stop := mustServe(t, s)
	remote := call(t, dir, UserListOp, UserList{}, "")
	stop()
	storetest.CheckClose(t, s)
	local := call(t, dir, UserListOp, UserList{}, "")
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
		name string
		run  func(tw *twin, hash string) result
	}{
		{"passwd", func(tw *twin, hash string) result {
			return both(t, tw, UserPasswdOp, UserPasswd{Name: "admin", NewPassword: NewPassword{PasswordHash: hash}}, "")
		}},
		{"del", func(tw *twin, _ string) result { return both(t, tw, UserDelOp, UserDel{Name: "admin"}, "") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwin(t)
			hash := testHash(t, "new")
			for _, dir := range []string{tw.local, tw.remote.Dir()} {
				seedInitialAdmin(t, dir, tw.remote)
			}
			got := tc.run(tw, hash)
			if got.err != "" || !strings.Contains(got.out, "removed initial-admin-password") {
				t.Errorf("%s admin:\n%s", tc.name, got)
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
