package admin

import (
	"crypto/sha256"
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
	// And a web UI sign-in: listed after the tokens, revoked by its ID.
	web := store.UISession{User: "alice", Epoch: u.Epoch, Expires: time.Date(2126, 3, 2, 10, 0, 0, 0, time.UTC)}
	if err := s.CreateUISession(webCookie, web, created); err != nil {
		t.Fatal(err)
	}
}

// webCookie is alice's web UI session cookie in seedSessions.
const webCookie = "alice-web-session-cookie"

// webSessionID is the ID user sessions shows for webCookie: the first 8
// bytes of its SHA-256 (the store keeps only the hash), in hex.
func webSessionID() string {
	sum := sha256.Sum256([]byte(webCookie))
	return hex.EncodeToString(sum[:8])
}

func TestUserSessions_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	local := storetest.Open(t, tw.local)
	seedSessions(t, local)
	storetest.CheckClose(t, local)
	seedSessions(t, tw.remote)
	first := hex.EncodeToString([]byte{1, 0xab, 0, 0, 0, 0, 0, 0})
	second := hex.EncodeToString([]byte{2, 0xab, 0, 0, 0, 0, 0, 0})
	web := webSessionID()
	header := "ID                KIND   CREATED               LAST USED             EXPIRES               CLIENT\n"
	webLine := web + "  web    -                     -                     2126-03-02T10:00:00Z  -\n"

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
				first + "  token  2026-03-01T10:00:00Z  2026-03-01T11:00:00Z  2126-03-01T10:00:00Z  docker\n" +
				second + "  token  2026-03-01T10:01:00Z  never                 2126-03-01T10:00:00Z  -\n" + webLine, ""},
		{"list unknown user", list("bob"), "", "no user bob"},
		{"revoke one", revoke(UserRevoke{Name: "alice", ID: first}), "revoked 1 session of alice\n", ""},
		{"revoke it again", revoke(UserRevoke{Name: "alice", ID: first}), "",
			"alice has no session " + first + " (see berth user sessions alice)"},
		{"list after revoke", list("alice"),
			"ID                KIND   CREATED               LAST USED  EXPIRES               CLIENT\n" +
				second + "  token  2026-03-01T10:01:00Z  never      2126-03-01T10:00:00Z  -\n" +
				web + "  web    -                     -          2126-03-02T10:00:00Z  -\n", ""},
		{"revoke the web session", revoke(UserRevoke{Name: "alice", ID: web}), "revoked 1 session of alice\n", ""},
		{"list after revoking the web session", list("alice"),
			"ID                KIND   CREATED               LAST USED  EXPIRES               CLIENT\n" +
				second + "  token  2026-03-01T10:01:00Z  never      2126-03-01T10:00:00Z  -\n", ""},
		{"revoke unknown user", revoke(UserRevoke{Name: "bob", All: true}), "", "no user bob"},
		{"revoke id and all", revoke(UserRevoke{Name: "alice", ID: second, All: true}), "", "usage: berth user revoke NAME ID|--all"},
		{"revoke neither", revoke(UserRevoke{Name: "alice"}), "", "usage: berth user revoke NAME ID|--all"},
		{"revoke all", revoke(UserRevoke{Name: "alice", All: true}), "revoked 1 session of alice\n", ""},
		{"revoke all of none", revoke(UserRevoke{Name: "alice", All: true}), "revoked 0 sessions of alice\n", ""},
		{"list none", list("alice"), "ID  KIND  CREATED  LAST USED  EXPIRES  CLIENT\n", ""},
	}
	for _, st := range steps {
		got := st.run()
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: got\n%s\nwant stdout\n%serror: %s", st.name, got, st.wantOut, st.wantErr)
		}
	}
}
