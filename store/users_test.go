package store

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func mustAddUser(t *testing.T, s *Store, name string) User {
	t.Helper()
	if err := s.AddUser(User{Name: name, PasswordHash: []byte("hash-" + name)}); err != nil {
		t.Fatalf("add user %q: %v", name, err)
	}
	u, err := s.User(name)
	if err != nil {
		t.Fatalf("user %q: %v", name, err)
	}
	return u
}

func TestValidateUserName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"simple", "alice", true},
		{"digits and separators", "ci-bot_2.x", true},
		{"double underscore", "a__b", true},
		{"max length", strings.Repeat("a", 255), true},
		{"email", "alice@example.com", false},
		{"slash: a namespace inside another", "alice/team", false},
		{"star", "a*c", false},
		{"space", "Bad Name", false},
		{"upper case", "UPPER", false},
		{"unicode", "jürgen", false},
		{"leading separator", "-alice", false},
		{"trailing separator", "alice.", false},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 256), false},
		{"colon", "al:ice", false},
		{"newline", "alice\n", false},
		{"nul", "al\x00ice", false},
		{"delete char", "al\x7fice", false},
		{"c1 control", "al\u0085ice", false},
		{"invalid utf8", "al\xffice", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateUserName(tc.input)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateUserName(%q) = %v, want ok=%v", tc.input, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUserInvalid) {
				t.Fatalf("ValidateUserName(%q) = %v, want ErrUserInvalid", tc.input, err)
			}
		})
	}
}

func TestStore_AddUser(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	if alice.Epoch == 0 || alice.Created.IsZero() || string(alice.PasswordHash) != "hash-alice" || alice.Admin {
		t.Fatalf("stored user = %+v", alice)
	}

	tests := []struct {
		name string
		user User
		want error
	}{
		{"ErrUserExists", User{Name: "alice", PasswordHash: []byte("x")}, ErrUserExists},
		{"ErrUserInvalid", User{Name: "a:b", PasswordHash: []byte("x")}, ErrUserInvalid},
		{"ErrPasswordHashEmpty", User{Name: "bob"}, ErrPasswordHashEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.AddUser(tc.user); !errors.Is(err, tc.want) {
				t.Fatalf("AddUser(%+v) = %v, want %v", tc.user, err, tc.want)
			}
		})
	}
	if _, err := s.User("bob"); !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("User(bob) = %v, want ErrUserUnknown", err)
	}
}

func TestStore_UsersSortedAndCounted(t *testing.T) {
	s := mustOpen(t)
	if n, err := s.UserCount(); err != nil || n != 0 {
		t.Fatalf("UserCount of empty store = %d, %v", n, err)
	}
	for _, name := range []string{"carol", "alice", "bob"} {
		mustAddUser(t, s, name)
	}
	if err := s.AddUser(User{Name: "root", PasswordHash: []byte("h"), Admin: true}); err != nil {
		t.Fatal(err)
	}
	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, ","); got != "alice,bob,carol,root" {
		t.Fatalf("Users() names = %s", got)
	}
	if !users[3].Admin {
		t.Fatalf("root lost its admin flag: %+v", users[3])
	}
	if n, err := s.UserCount(); err != nil || n != 4 {
		t.Fatalf("UserCount = %d, %v; want 4", n, err)
	}
}

func TestStore_SetPassword(t *testing.T) {
	s := mustOpen(t)
	before := mustAddUser(t, s, "alice")
	mustAddUser(t, s, "bob")
	aliceToken, bobToken := [32]byte{1}, [32]byte{2}
	mustPutToken(t, s, aliceToken, RefreshToken{User: "alice", Service: "berth", Epoch: before.Epoch})
	bob, _ := s.User("bob")
	mustPutToken(t, s, bobToken, RefreshToken{User: "bob", Service: "berth", Epoch: bob.Epoch})

	if err := s.SetPassword("alice", []byte("new-hash")); err != nil {
		t.Fatal(err)
	}
	after, err := s.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch <= before.Epoch || string(after.PasswordHash) != "new-hash" || !after.Created.Equal(before.Created) {
		t.Fatalf("after SetPassword: %+v, before: %+v", after, before)
	}
	if _, err := s.RefreshToken(aliceToken); !errors.Is(err, ErrTokenUnknown) {
		t.Fatalf("alice's refresh token after password change: %v, want ErrTokenUnknown", err)
	}
	if _, err := s.RefreshToken(bobToken); err != nil {
		t.Fatalf("bob's refresh token must survive alice's password change: %v", err)
	}
	assertTokenRecords(t, s, 1)

	if err := s.SetPassword("nobody", []byte("x")); !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("SetPassword(nobody) = %v, want ErrUserUnknown", err)
	}
	if err := s.SetPassword("alice", nil); !errors.Is(err, ErrPasswordHashEmpty) {
		t.Fatalf("SetPassword with empty hash = %v, want ErrPasswordHashEmpty", err)
	}
}

func TestStore_DeleteUser(t *testing.T) {
	s := mustOpen(t)
	first := mustAddUser(t, s, "alice")
	mustPutToken(t, s, [32]byte{1}, RefreshToken{User: "alice", Service: "berth", Epoch: first.Epoch})

	if err := s.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User("alice"); !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("User after delete = %v, want ErrUserUnknown", err)
	}
	assertTokenRecords(t, s, 0)
	if err := s.DeleteUser("alice"); !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("second DeleteUser = %v, want ErrUserUnknown", err)
	}

	// A user created again under the same name must not inherit the old
	// epoch: caches keyed by (name, epoch) would otherwise accept the old
	// password.
	again := mustAddUser(t, s, "alice")
	if again.Epoch == first.Epoch {
		t.Fatalf("re-created user reuses epoch %d", again.Epoch)
	}
}

func TestStore_UsersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(User{Name: "alice", PasswordHash: []byte("h"), Admin: true}); err != nil {
		t.Fatal(err)
	}
	want, _ := s.User("alice")
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || !got.Admin || got.Epoch != want.Epoch || !got.Created.Equal(want.Created) {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
}

// assertTokenRecords checks how many refresh token records are stored,
// counting ones RefreshToken would already refuse.
func assertTokenRecords(t *testing.T, s *Store, want int) {
	t.Helper()
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketTokens).Stats().KeyN
		return nil
	})
	if n != want {
		t.Fatalf("%d refresh token records stored, want %d", n, want)
	}
}
