package admin

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// seedSessions gives alice two refresh tokens with fixed hashes and times,
// so both sides of a twin list the same IDs.
func seedSessions(t *testing.T, s *store.Store) {
	t.Helper()
	if err := s.AddUser(store.User{Name: "alice", PasswordHash: []byte(testHash(t, "pw"))}); err != nil {
		t.Fatal(err)
	}
	u, err := s.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, rt := range []store.RefreshToken{
		{Client: "docker", LastUsed: created.Add(time.Hour)},
		{},
	} {
		rt.User, rt.Service, rt.Epoch = "alice", "berth", u.Epoch
		rt.Created = created.Add(time.Duration(i) * time.Minute)
		rt.Expires = time.Date(2126, 3, 1, 10, 0, 0, 0, time.UTC)
		if _, err := s.PutRefreshToken([32]byte{byte(i + 1), 0xab}, rt, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUserSessions_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	local := storetest.Open(t, tw.local)
	seedSessions(t, local)
	storetest.CheckClose(t, local)
	seedSessions(t, tw.remote)
	first := hex.EncodeToString([]byte{1, 0xab, 0, 0, 0, 0, 0, 0})
	second := hex.EncodeToString([]byte{2, 0xab, 0, 0, 0, 0, 0, 0})
	header := "ID                CREATED               LAST USED             EXPIRES               CLIENT\n"

	list := func(name string) func() result {
		return func() result { return both(t, tw, UserSessionsOp, UserSessions{Name: name}, "") }
	}
	revoke := func(r UserRevoke) func() result {
		return func() result { return both(t, tw, UserRevokeOp, r, "") }
	}
	steps := []struct {
		name    string
		run     func() result
		wantOut string
		wantErr string
	}{
		{"list", list("alice"),
			header +
				first + "  2026-03-01T10:00:00Z  2026-03-01T11:00:00Z  2126-03-01T10:00:00Z  docker\n" +
				second + "  2026-03-01T10:01:00Z  never                 2126-03-01T10:00:00Z  -\n", ""},
		{"list unknown user", list("bob"), "", "no user bob"},
		{"revoke one", revoke(UserRevoke{Name: "alice", ID: first}), "revoked 1 session of alice\n", ""},
		{"revoke it again", revoke(UserRevoke{Name: "alice", ID: first}), "",
			"alice has no session " + first + " (see berth user sessions alice)"},
		{"list after revoke", list("alice"),
			"ID                CREATED               LAST USED  EXPIRES               CLIENT\n" +
				second + "  2026-03-01T10:01:00Z  never      2126-03-01T10:00:00Z  -\n", ""},
		{"revoke unknown user", revoke(UserRevoke{Name: "bob", All: true}), "", "no user bob"},
		{"revoke id and all", revoke(UserRevoke{Name: "alice", ID: second, All: true}), "", "usage: berth user revoke NAME ID|--all"},
		{"revoke neither", revoke(UserRevoke{Name: "alice"}), "", "usage: berth user revoke NAME ID|--all"},
		{"revoke all", revoke(UserRevoke{Name: "alice", All: true}), "revoked 1 session of alice\n", ""},
		{"revoke all of none", revoke(UserRevoke{Name: "alice", All: true}), "revoked 0 sessions of alice\n", ""},
		{"list none", list("alice"), "ID  CREATED  LAST USED  EXPIRES  CLIENT\n", ""},
	}
	for _, st := range steps {
		got := st.run()
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: got\n%s\nwant stdout\n%serror: %s", st.name, got, st.wantOut, st.wantErr)
		}
	}
}
