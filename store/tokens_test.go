package store

import (
	"errors"
	"testing"
	"time"
)

func mustPutToken(t *testing.T, s *Store, hash [32]byte, rt RefreshToken) {
	t.Helper()
	if _, err := s.PutRefreshToken(hash, rt, 0); err != nil {
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
	_, err := s.PutRefreshToken([32]byte{1}, RefreshToken{User: "ghost", Service: "berth"}, 0)
	if !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("PutRefreshToken for unknown user = %v, want ErrUserUnknown", err)
	}
	assertTokenRecords(t, s, 0)
}

func TestStore_PutRefreshTokenCapsPerUser(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	bob := mustAddUser(t, s, "bob")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mustPutToken(t, s, [32]byte{0xb0}, RefreshToken{User: "bob", Service: "berth", Epoch: bob.Epoch, Created: base})
	for i := range 5 {
		revoked, err := s.PutRefreshToken([32]byte{byte(i + 1)}, RefreshToken{User: "alice", Service: "berth",
			Epoch: alice.Epoch, Created: base.Add(time.Duration(i) * time.Hour)}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(0, i+1-3) - max(0, i-3); revoked != want {
			t.Errorf("token %d: revoked %d, want %d", i+1, revoked, want)
		}
	}
	held, err := s.RefreshTokensOf("alice", base)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range held {
		ids = append(ids, h.ID)
	}
	// The two oldest went; the three newest stay, oldest first.
	want := []string{sessionID([]byte{3, 0, 0, 0, 0, 0, 0, 0}), sessionID([]byte{4, 0, 0, 0, 0, 0, 0, 0}), sessionID([]byte{5, 0, 0, 0, 0, 0, 0, 0})}
	if len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Errorf("alice holds %v, want %v", ids, want)
	}
	if _, err := s.RefreshToken([32]byte{0xb0}); err != nil {
		t.Errorf("bob's token went with alice's cap: %v", err)
	}
}

func TestStore_UseRefreshToken(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	live, old, legacy := [32]byte{1}, [32]byte{2}, [32]byte{3}
	mustPutToken(t, s, live, RefreshToken{User: "alice", Epoch: alice.Epoch, Created: base, Expires: base.Add(48 * time.Hour), Client: "docker"})
	mustPutToken(t, s, old, RefreshToken{User: "alice", Epoch: alice.Epoch, Created: base, Expires: base.Add(time.Hour)})
	mustPutToken(t, s, legacy, RefreshToken{User: "alice", Epoch: alice.Epoch, Created: base})

	t.Run("OK records last use", func(t *testing.T) {
		now := base.Add(2 * time.Hour)
		got, err := s.UseRefreshToken(live, now)
		if err != nil || !got.LastUsed.Equal(now) || got.Client != "docker" {
			t.Fatalf("UseRefreshToken = %+v, %v; want LastUsed %v", got, err, now)
		}
		// Within the minute: not written again.
		if got, _ := s.UseRefreshToken(live, now.Add(30*time.Second)); !got.LastUsed.Equal(now) {
			t.Errorf("LastUsed %v after a use 30 s later, want still %v", got.LastUsed, now)
		}
		if got, _ := s.UseRefreshToken(live, now.Add(2*time.Minute)); !got.LastUsed.Equal(now.Add(2 * time.Minute)) {
			t.Errorf("LastUsed %v after a use 2 min later, want it moved", got.LastUsed)
		}
	})
	t.Run("ErrExpired deletes", func(t *testing.T) {
		if _, err := s.UseRefreshToken(old, base.Add(time.Hour)); !errors.Is(err, ErrTokenUnknown) {
			t.Fatalf("expired token: %v, want ErrTokenUnknown", err)
		}
		if _, err := s.RefreshToken(old); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("expired token still stored after its use: %v", err)
		}
	})
	t.Run("legacy record lives DefaultRefreshTokenLifetime", func(t *testing.T) {
		if _, err := s.UseRefreshToken(legacy, base.Add(DefaultRefreshTokenLifetime-time.Second)); err != nil {
			t.Errorf("legacy token before its lifetime: %v", err)
		}
		if _, err := s.UseRefreshToken(legacy, base.Add(DefaultRefreshTokenLifetime)); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("legacy token after its lifetime: %v, want ErrTokenUnknown", err)
		}
	})
}

func TestStore_DeleteExpiredRefreshTokens(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		mustPutToken(t, s, [32]byte{byte(i)}, RefreshToken{User: "alice", Epoch: alice.Epoch, Created: base,
			Expires: base.Add(time.Duration(i+1) * time.Hour)})
	}
	mustPutToken(t, s, [32]byte{0xee}, RefreshToken{User: "alice", Epoch: alice.Epoch - 1, Created: base, Expires: base.Add(time.Hour * 100)})
	n, err := s.DeleteExpiredRefreshTokens(base.Add(4 * time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("DeleteExpiredRefreshTokens = %d, %v; want 4 expired + 1 stale epoch", n, err)
	}
	assertTokenRecords(t, s, 6)
	held, err := s.RefreshTokensOf("alice", base.Add(4*time.Hour))
	if err != nil || len(held) != 6 {
		t.Errorf("RefreshTokensOf = %d tokens, %v; want 6", len(held), err)
	}
	if held, _ := s.RefreshTokensOf("alice", base.Add(8*time.Hour)); len(held) != 2 {
		t.Errorf("RefreshTokensOf 4 h later lists %d tokens, want only the 2 unexpired", len(held))
	}
}

func TestStore_RevokeRefreshTokens(t *testing.T) {
	s := mustOpen(t)
	alice := mustAddUser(t, s, "alice")
	bob := mustAddUser(t, s, "bob")
	for i := range 3 {
		mustPutToken(t, s, [32]byte{byte(i + 1)}, RefreshToken{User: "alice", Epoch: alice.Epoch})
	}
	mustPutToken(t, s, [32]byte{9}, RefreshToken{User: "bob", Epoch: bob.Epoch})
	id := sessionID([]byte{2, 0, 0, 0, 0, 0, 0, 0})

	if n, err := s.RevokeRefreshTokens("alice", id); err != nil || n != 1 {
		t.Fatalf("revoke %s = %d, %v; want 1", id, n, err)
	}
	if _, err := s.RefreshToken([32]byte{2}); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("revoked token still accepted: %v", err)
	}
	for _, tc := range []struct {
		name, user, id string
		want           error
	}{
		{"ErrSessionUnknown revoked twice", "alice", id, ErrSessionUnknown},
		{"ErrSessionUnknown another user's", "alice", sessionID([]byte{9, 0, 0, 0, 0, 0, 0, 0}), ErrSessionUnknown},
		{"ErrUserUnknown", "ghost", "", ErrUserUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.RevokeRefreshTokens(tc.user, tc.id); !errors.Is(err, tc.want) {
				t.Errorf("RevokeRefreshTokens(%q, %q) = %v, want %v", tc.user, tc.id, err, tc.want)
			}
		})
	}
	if n, err := s.RevokeRefreshTokens("alice", ""); err != nil || n != 2 {
		t.Fatalf("revoke all = %d, %v; want 2", n, err)
	}
	assertTokenRecords(t, s, 1) // bob's
}
