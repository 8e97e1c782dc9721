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
