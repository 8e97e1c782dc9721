package store

import (
	"errors"
	"testing"
)

func mustPutToken(t *testing.T, s *Store, hash [32]byte, rt RefreshToken) {
	t.Helper()
	if err := s.PutRefreshToken(hash, rt); err != nil {
		t.Fatalf("put refresh token for %s: %v", rt.User, err)
	}
}

func TestStore_RefreshToken(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	bob := mustAddUser(t, s, "bob")
	valid, stale, deleted := [32]byte{1}, [32]byte{2}, [32]byte{3}
	mustPutToken(t, s, valid, RefreshToken{User: "alice", Service: "berth", Epoch: alice.Epoch})
	mustPutToken(t, s, stale, RefreshToken{User: "alice", Service: "berth", Epoch: alice.Epoch - 1})
	mustPutToken(t, s, deleted, RefreshToken{User: "bob", Service: "berth", Epoch: bob.Epoch})
	if err := s.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}

	got, err := s.RefreshToken(valid)
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if got.User != "alice" || got.Service != "berth" || got.Epoch != alice.Epoch || got.Created.IsZero() {
		t.Fatalf("valid token = %+v", got)
	}

	tests := []struct {
		name string
		hash [32]byte
	}{
		{"never stored", [32]byte{9}},
		{"epoch differs", stale},
		{"user deleted", deleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.RefreshToken(tc.hash); !errors.Is(err, ErrTokenUnknown) {
				t.Fatalf("RefreshToken(%x) = %v, want ErrTokenUnknown", tc.hash[:2], err)
			}
		})
	}
}

func TestStore_PutRefreshTokenForUnknownUser(t *testing.T) {
	s := mustOpen(t)
	err := s.PutRefreshToken([32]byte{1}, RefreshToken{User: "ghost", Service: "berth"})
	if !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("PutRefreshToken for unknown user = %v, want ErrUserUnknown", err)
	}
	assertTokenRecords(t, s, 0)
}
