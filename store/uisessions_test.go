package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func countUISessions(t *testing.T, s *Store) (sessions, index int) {
	t.Helper()
	s.db.View(func(tx *bolt.Tx) error {
		sessions = tx.Bucket(bucketUISessions).Stats().KeyN
		index = tx.Bucket(bucketUISessionUsers).Stats().KeyN
		return nil
	})
	return sessions, index
}

// TestUISessions_Bounds: a user holds at most MaxUISessionsPerUser (the one
// closest to expiry goes), expired sessions are pruned on the next sign-in,
// only the id's hash is a key, and deleting the user deletes its sessions.
func TestUISessions_Bounds(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	now := time.Now()
	for i := range MaxUISessionsPerUser + 5 {
		sess := UISession{User: "alice", Epoch: alice.Epoch, Expires: now.Add(time.Hour + time.Duration(i)*time.Minute)}
		if err := s.CreateUISession(fmt.Sprintf("alice-%d", i), sess, now); err != nil {
			t.Fatal(err)
		}
	}
	if n, idx := countUISessions(t, s); n != MaxUISessionsPerUser || idx != n {
		t.Fatalf("alice holds %d sessions (%d indexed), want %d", n, idx, MaxUISessionsPerUser)
	}
	for i := range 5 {
		if _, err := s.UISession(fmt.Sprintf("alice-%d", i), now); !errors.Is(err, ErrUISessionUnknown) {
			t.Errorf("session %d, among the first to expire, survived the cap: %v", i, err)
		}
	}
	if got, err := s.UISession(fmt.Sprintf("alice-%d", MaxUISessionsPerUser+4), now); err != nil || got.User != "alice" {
		t.Errorf("the newest session: %+v, %v", got, err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUISessions).Get([]byte("alice-5")) != nil {
			t.Error("a session id is stored in the clear")
		}
		return nil
	})

	// Two hours on, alice's are expired: bob's sign-in prunes them all.
	bob := mustAddUser(t, s, "bob")
	later := now.Add(3 * time.Hour)
	if _, err := s.UISession("alice-10", later); !errors.Is(err, ErrUISessionUnknown) {
		t.Errorf("an expired session reads as live: %v", err)
	}
	if err := s.CreateUISession("bob-1", UISession{User: "bob", Epoch: bob.Epoch, Expires: later.Add(time.Hour)}, later); err != nil {
		t.Fatal(err)
	}
	if n, idx := countUISessions(t, s); n != 1 || idx != 1 {
		t.Errorf("%d sessions (%d indexed) after the prune, want bob's 1", n, idx)
	}
	if err := s.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	if n, idx := countUISessions(t, s); n != 0 || idx != 0 {
		t.Errorf("%d sessions (%d indexed) after bob's deletion, want 0", n, idx)
	}
}

// TestUISessions_OldRecordLoads: a record written before directory sessions
// existed (no directory fields) loads as a local session, unchanged.
func TestUISessions_OldRecordLoads(t *testing.T) {
	s := mustOpen(t)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	old := fmt.Sprintf(`{"user":"alice","epoch":7,"expires":%q}`, expires.Format(time.RFC3339Nano))
	err := s.db.Update(func(tx *bolt.Tx) error {
		k := uiSessionKey("old-id")
		if err := tx.Bucket(bucketUISessions).Put(k, append([]byte{recordVersion}, old...)); err != nil {
			return err
		}
		return tx.Bucket(bucketUISessionUsers).Put(key("alice", string(k)), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UISession("old-id", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.Epoch != 7 || !got.Expires.Equal(expires) || got.Directory || got.Groups != nil || !got.Checked.IsZero() || got.LDAPConfig != "" {
		t.Errorf("old record loads as %+v", got)
	}
	if err := s.RecheckedUISession("old-id", []string{"cn=x"}, time.Now()); err == nil {
		t.Error("RecheckedUISession changed a local session")
	}
}

// TestUISessions_Directory: a directory user's sessions keep their groups
// and last check, are updated by RecheckedUISession (never brought back
// once gone), end with user revoke --all (RevokeRefreshTokens with no id,
// though no user record exists) and when a local user takes the name.
func TestUISessions_Directory(t *testing.T) {
	s := mustOpen(t)
	now := time.Now()
	sess := UISession{User: "bob", Expires: now.Add(time.Hour), Directory: true, Groups: []string{"cn=ops"}, Checked: now, LDAPConfig: "c1"}
	for _, id := range []string{"bob-1", "bob-2"} {
		if err := s.CreateUISession(id, sess, now); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Minute)
	if err := s.RecheckedUISession("bob-1", []string{"cn=dev", "cn=ops"}, later); err != nil {
		t.Fatal(err)
	}
	got, err := s.UISession("bob-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Directory || len(got.Groups) != 2 || got.Groups[0] != "cn=dev" || !got.Checked.Equal(later) || got.LDAPConfig != "c1" {
		t.Errorf("after a re-check: %+v", got)
	}
	if _, err := s.RevokeRefreshTokens("bob", "some-id"); !errors.Is(err, ErrSessionUnknown) {
		t.Errorf("revoking an unknown session of directory user bob: %v, want ErrSessionUnknown", err)
	}
	if _, err := s.RevokeRefreshTokens("nobody", "some-id"); !errors.Is(err, ErrUserUnknown) {
		t.Errorf("revoking a session of a name with no user and no session: %v, want ErrUserUnknown", err)
	}
	// Listed, live ones only, and revoked one by one by the listed ID.
	if err := s.CreateUISession("bob-old", UISession{User: "bob", Directory: true, Expires: now.Add(-time.Second)}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	listed, err := s.UISessionsOf("bob", now)
	if err != nil || len(listed) != 2 || !listed[0].Directory {
		t.Fatalf("bob's sessions: %+v, %v; want the two live directory sessions", listed, err)
	}
	if n, err := s.RevokeRefreshTokens("bob", listed[0].ID); err != nil || n != 1 {
		t.Fatalf("revoke bob %s: %d, %v; want 1", listed[0].ID, n, err)
	}
	if left, err := s.UISessionsOf("bob", now); err != nil || len(left) != 1 || left[0].ID != listed[1].ID {
		t.Fatalf("after revoking %s: %+v, %v; want only %s", listed[0].ID, left, err, listed[1].ID)
	}
	if err := s.CreateUISession("bob-2b", sess, now); err != nil {
		t.Fatal(err)
	}
	n, err := s.RevokeRefreshTokens("bob", "")
	if err != nil || n != 2 {
		t.Fatalf("revoke bob --all: %d, %v; want 2 sessions (the expired one went at the last sign-in)", n, err)
	}
	if err := s.RecheckedUISession("bob-1", nil, later); !errors.Is(err, ErrUISessionUnknown) {
		t.Errorf("re-check of a revoked session: %v, want ErrUISessionUnknown", err)
	}
	if _, err := s.RevokeRefreshTokens("bob", ""); !errors.Is(err, ErrUserUnknown) {
		t.Errorf("revoke bob --all again: %v, want ErrUserUnknown", err)
	}

	sess.User = "carol"
	if err := s.CreateUISession("carol-1", sess, now); err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, s, "carol")
	if _, err := s.UISession("carol-1", now); !errors.Is(err, ErrUISessionUnknown) {
		t.Errorf("the directory carol's session after a local carol's creation: %v, want ErrUISessionUnknown", err)
	}
	if n, idx := countUISessions(t, s); n != 0 || idx != 0 {
		t.Errorf("%d sessions (%d indexed) left, want none", n, idx)
	}
}

// TestUISessions_LDAPSettingsEndDirectorySessions: storing LDAP settings or
// turning LDAP off ends every directory session, and no local one.
func TestUISessions_LDAPSettingsEndDirectorySessions(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	now := time.Now()
	local := UISession{User: "alice", Epoch: alice.Epoch, Expires: now.Add(time.Hour)}
	dir := UISession{User: "bob", Expires: now.Add(time.Hour), Directory: true, Checked: now}
	for _, c := range []*LDAPConfig{{URL: "ldap://127.0.0.1:1", BaseDN: "dc=x", UserFilter: "(uid=%s)"}, nil} {
		if err := s.CreateUISession("alice-1", local, now); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUISession("bob-1", dir, now); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLDAPConfig(c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UISession("bob-1", now); !errors.Is(err, ErrUISessionUnknown) {
			t.Errorf("SetLDAPConfig(%v): the directory session: %v, want ErrUISessionUnknown", c, err)
		}
		if _, err := s.UISession("alice-1", now); err != nil {
			t.Errorf("SetLDAPConfig(%v): the local session: %v", c, err)
		}
		if n, idx := countUISessions(t, s); n != 1 || idx != 1 {
			t.Errorf("%d sessions (%d indexed), want alice's alone", n, idx)
		}
	}
}
