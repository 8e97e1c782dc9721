package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// signedIn reports whether the cookie's session is live: the page offers
// to sign out.
func signedIn(t *testing.T, s *server, cookie *http.Cookie) bool {
	t.Helper()
	return len(getPage(t, s, "/ui/", cookie).find("form", "action", "/ui/signout")) > 0
}

// TestUI_SessionsSurviveRestart: web UI sessions live in meta.db, so a
// restart of the real binary keeps them (with their CSRF token), while a
// password change, `user revoke --all`, deletion and sign-out end them at
// once; meta.db holds no session id in the clear.
func TestUI_SessionsSurviveRestart(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	s.addUser(t, "bob", "bob-secret-1")
	s.addUser(t, "carol", "carol-secret")
	s.addUser(t, "dave", "dave-secret")
	admin := signIn(t, s, "admin", adminPW)
	alice := signIn(t, s, "alice", "alice-secret")
	bob := signIn(t, s, "bob", "bob-secret-1")
	carol := signIn(t, s, "carol", "carol-secret")
	dave := signIn(t, s, "dave", "dave-secret")
	token := csrfOf(t, s, alice)

	s.stop(t)
	raw, err := os.ReadFile(filepath.Join(s.Data, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*http.Cookie{admin, alice, bob, carol, dave} {
		if strings.Contains(string(raw), c.Value) {
			t.Errorf("meta.db holds a session id in the clear")
		}
	}
	s, _ = startAuthServer(t, s.Data)
	for name, c := range map[string]*http.Cookie{"admin": admin, "alice": alice, "bob": bob, "carol": carol, "dave": dave} {
		if !signedIn(t, s, c) {
			t.Errorf("%s is signed out after a restart", name)
		}
	}
	if got := csrfOf(t, s, alice); got != token {
		t.Errorf("alice's CSRF token changed across the restart")
	}
	// The restored session still passes the CSRF check and acts: sign-out.
	p := doPage(t, formPost(t, s.URL("/ui/signout"), url.Values{"csrf": {token}}, alice, "http://"+s.Addr))
	if p.status != http.StatusSeeOther {
		t.Errorf("alice's sign-out after the restart: status %d, want 303", p.status)
	}
	if signedIn(t, s, alice) {
		t.Error("alice is still signed in after signing out")
	}

	s.berth(t, "bob-secret-2\n", "user", "passwd", "bob", "--password-stdin")
	if signedIn(t, s, bob) {
		t.Error("bob's session outlived his password change")
	}
	if out := s.berth(t, "", "user", "revoke", "carol", "--all"); !strings.Contains(out, "1 session") {
		t.Errorf("user revoke --all carol: %q, want the UI session counted", out)
	}
	if signedIn(t, s, carol) {
		t.Error("carol's session outlived user revoke --all")
	}
	s.berth(t, "", "user", "del", "dave")
	if signedIn(t, s, dave) {
		t.Error("dave's session outlived his deletion")
	}
	if !signedIn(t, s, admin) {
		t.Error("the admin was signed out by changes to other users")
	}
}

// TestUI_SessionsListedAndRevokedByID: `berth user sessions` lists a
// user's web UI sign-ins beside its refresh tokens (KIND web), live ones
// only, and `berth user revoke NAME ID` ends one of them by the listed ID
// while the user's other sign-in stays.
func TestUI_SessionsListedAndRevokedByID(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "erin", "erin-secret")
	first := signIn(t, s, "erin", "erin-secret")
	second := signIn(t, s, "erin", "erin-secret")
	webIDs := func() []string {
		t.Helper()
		out := s.berth(t, "", "user", "sessions", "erin")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], " KIND ") {
			t.Fatalf("user sessions printed no table with a KIND column:\n%s", out)
		}
		var ids []string
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > 1 && f[1] == "web" {
				ids = append(ids, f[0])
			}
		}
		return ids
	}
	ids := webIDs()
	if len(ids) != 2 {
		t.Fatalf("erin's web sessions listed: %v, want 2", ids)
	}
	// Which ID is which cookie is not shown (only a hash is stored): revoke
	// one and find out which sign-in ended.
	if out := s.berth(t, "", "user", "revoke", "erin", ids[0]); out != "revoked 1 session of erin\n" {
		t.Errorf("user revoke erin %s: %q", ids[0], out)
	}
	a, b := signedIn(t, s, first), signedIn(t, s, second)
	if a == b {
		t.Fatalf("after revoking one of two web sessions: first signed in %v, second %v; want exactly one", a, b)
	}
	if left := webIDs(); len(left) != 1 || left[0] != ids[1] {
		t.Errorf("web sessions after revoking %s: %v, want only %s", ids[0], left, ids[1])
	}
	_, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "revoke", "erin", ids[0])
	if err == nil || !strings.Contains(stderr, "erin has no session "+ids[0]) {
		t.Errorf("revoking it again: %v, %q; want an error naming the session", err, stderr)
	}
}
