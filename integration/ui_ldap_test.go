package integration

// Web UI sign-in of directory (LDAP) users against a real slapd
// (ldap_harness_test.go) and the real binary: what a directory user sees
// is what its docker token may pull, the session follows the directory
// (group changes, removal, outage) at each re-check, and LDAP settings
// changes, a local user of the same name and `user revoke --all` end it.

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// uiLDAPRegistry is ldapRegistry with a web UI re-check of recheck
// seconds, a rule that ends the default "signed-in users pull everything"
// (so the grants decide), and images in acme/apps/api, acme/db,
// other/thing and alice/tools (pushed by alice through LDAP).
func uiLDAPRegistry(t *testing.T, slapd *slapdServer, recheck string) *server {
	t.Helper()
	s := ldapRegistry(t, slapd, "--ui-recheck", recheck)
	// The first rule keeps the default as a rule of its own: delete it.
	s.berth(t, "", "acl", "add", "--account", "dave", "--name", "dave/*", "--actions", "pull")
	s.berth(t, "", "acl", "del", "2")
	if out := s.berth(t, "", "acl", "list"); strings.Count(out, "pull") != 1 {
		t.Fatalf("acl list: want one rule:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	adminPW := strings.TrimSpace(string(raw))
	for _, ref := range []string{"acme/apps/api:v1", "acme/db:v1", "other/thing:v1"} {
		pushRandom(t, s, ref, 256, 1, "admin", adminPW)
	}
	pushRandom(t, s, "alice/tools:v1", 256, 1, "alice", "alice-ldap-pw")
	return s
}

// uiRepos returns the repositories the session's list shows, or nil when
// the cookie is not signed in.
func uiRepos(t *testing.T, s *server, cookie *http.Cookie) []string {
	t.Helper()
	p := getPage(t, s, "/ui/", cookie)
	if len(p.find("form", "action", "/ui/signout")) == 0 {
		return nil
	}
	repos := []string{}
	for _, a := range p.find("a", "class", "repo") {
		repos = append(repos, textOf(a))
	}
	slices.Sort(repos)
	return repos
}

// waitUI polls the session's list, at most 20 s, until ok holds for it
// (nil: signed out), and returns the last list.
func waitUI(t *testing.T, s *server, cookie *http.Cookie, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		repos := uiRepos(t, s, cookie)
		if ok(repos) {
			return repos
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; the list is %q", what, repos)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func signedOut(repos []string) bool { return repos == nil }

// TestUILDAP_SignIn: directory users sign in to the web UI with their LDAP
// password and see what their token may pull, no more; admin pages stay
// closed to them; wrong passwords are refused; the session survives a
// restart, its groups kept in meta.db.
func TestUILDAP_SignIn(t *testing.T) {
	slapd := startSlapd(t, true)
	s := uiLDAPRegistry(t, slapd, "300")

	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong-password"}, {"alice", ""}, {"nobody", "alice-ldap-pw"}, {"alic*", "alice-ldap-pw"},
	} {
		pre := signinCSRF(t, s)
		p := doPage(t, formPost(t, s.URL("/ui/signin"), url.Values{"csrf": {pre.Value}, "name": {tc.user}, "password": {tc.password}}, pre, "http://"+s.Addr))
		if errs := p.find("p", "id", "error"); p.status != http.StatusUnauthorized || len(errs) != 1 || !strings.Contains(textOf(errs[0]), "Wrong name or password") {
			t.Errorf("UI sign-in as %q with a wrong password: status %d, %d error lines", tc.user, p.status, len(errs))
		}
		for _, c := range p.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "berth_session=") && !strings.HasPrefix(c, "berth_session=;") {
				t.Errorf("a failed sign-in as %q set a session cookie", tc.user)
			}
		}
	}

	if out := s.berth(t, "", "ldap", "show"); !strings.Contains(out, "ui-recheck: 5m0s\n") {
		t.Errorf("ldap show does not say the re-check interval:\n%s", out)
	}
	_, stderr, err := runBerth(t, t.Context(), strings.NewReader(ldapRootPW+"\n"), "--data", s.Data, "ldap", "set", "--url", slapd.URL,
		"--bind-dn", ldapRootDN, "--bind-password-stdin", "--base-dn", ldapSuffix, "--ui-recheck", "100000")
	if err == nil || !strings.Contains(stderr, "--ui-recheck 100000") {
		t.Errorf("ldap set --ui-recheck 100000: err %v, stderr %q", err, stderr)
	}

	// A group no team maps: sessions do not keep it.
	slapd.ldapadd(t, "dn: cn=everyone,"+ldapGroupsOU+"\nobjectClass: groupOfNames\ncn: everyone\nmember: uid=alice,"+ldapPeople+"\n")

	alice := signIn(t, s, "alice", "alice-ldap-pw")
	bob := signIn(t, s, "bob", "bob-ldap-pw")
	carol := signIn(t, s, "carol", "carol-ldap-pw")
	want := map[string][]string{
		"alice": {"acme/apps/api", "alice/tools"}, // team dev writes acme/apps/**; her namespace
		"bob":   {"acme/apps/api", "acme/db"},     // team ops is admin of acme
		"carol": {},                               // no team, no rule: nothing
	}
	cookies := map[string]*http.Cookie{"alice": alice, "bob": bob, "carol": carol}
	for user, c := range cookies {
		if got := uiRepos(t, s, c); !slices.Equal(got, want[user]) {
			t.Errorf("%s (LDAP) sees %q, want %q", user, got, want[user])
		}
	}

	// The same decisions as the user's docker token, repository by
	// repository, and the pages of hidden ones answer 404.
	password := map[string]string{"alice": "alice-ldap-pw", "bob": "bob-ldap-pw", "carol": "carol-ldap-pw"}
	for user, c := range cookies {
		for _, repo := range []string{"acme/apps/api", "acme/db", "other/thing", "alice/tools"} {
			granted, r := s.grantedTo(t, user, password[user], repo)
			if r.Status != http.StatusOK {
				t.Fatalf("/token for %s: %s", user, r)
			}
			tokenPulls := strings.Contains(granted, "pull")
			page := getPage(t, s, "/ui/repo?name="+repo, c)
			if uiPulls := page.status == http.StatusOK; uiPulls != tokenPulls {
				t.Errorf("%s on %s: the UI page answers %d, the token grants %q", user, repo, page.status, granted)
			}
			offered := len(page.find("a", "class", "danger")) > 0
			if tokenDeletes := strings.Contains(granted, "delete"); page.status == http.StatusOK && offered != tokenDeletes {
				t.Errorf("%s on %s: delete offered %v, the token grants %q", user, repo, offered, granted)
			}
		}
	}

	// Admin pages stay an admin's; a team's admin level on acme is not.
	token := csrfOf(t, s, bob)
	for _, path := range []string{"/ui/admin", "/ui/admin/rules", "/ui/admin/storage"} {
		if p := getPage(t, s, path, bob); p.status != http.StatusForbidden {
			t.Errorf("bob (LDAP, team admin of acme) %s: status %d, want 403", path, p.status)
		}
	}
	if p := doPage(t, formPost(t, s.URL("/ui/admin/user/add"), url.Values{"csrf": {token}, "name": {"mallory"}, "password": {"x-secret-pw"}}, bob, "http://"+s.Addr)); p.status != http.StatusForbidden {
		t.Errorf("bob POST /ui/admin/user/add: status %d, want 403", p.status)
	}
	// A delete the token allows works from the UI, with the CSRF check.
	if p := doPage(t, formPost(t, s.URL("/ui/delete"), url.Values{"csrf": {"wrong"}, "name": {"acme/db"}, "tag": {"v1"}}, bob, "http://"+s.Addr)); p.status != http.StatusForbidden {
		t.Errorf("bob's delete with a wrong CSRF token: status %d, want 403", p.status)
	}
	if p := doPage(t, formPost(t, s.URL("/ui/delete"), url.Values{"csrf": {token}, "name": {"acme/db"}, "tag": {"v1"}}, bob, "http://"+s.Addr)); p.status != http.StatusSeeOther {
		t.Errorf("bob deletes acme/db:v1: status %d, want 303", p.status)
	}

	// A restart keeps directory sessions; their groups come from meta.db
	// (the server remembers no sign-in from before).
	s.stop(t)
	raw, err := os.ReadFile(filepath.Join(s.Data, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "cn=everyone,") {
		t.Error("meta.db keeps alice's unmapped group everyone with her session")
	}
	s, _ = startAuthServer(t, s.Data)
	if got := uiRepos(t, s, alice); !slices.Equal(got, want["alice"]) {
		t.Errorf("after a restart alice sees %q, want %q", got, want["alice"])
	}
	for _, pw := range []string{"alice-ldap-pw", "bob-ldap-pw", "carol-ldap-pw", ldapRootPW} {
		if strings.Contains(s.Log(), pw) {
			t.Errorf("the server's log holds the password %q", pw)
		}
	}
}

// TestUILDAP_Recheck: a directory session follows the directory at each
// re-check (1 s here): a group change changes what the user sees, a
// removal signs it out; a local user of the same name, `user revoke --all`,
// changed LDAP settings and LDAP turned off end sessions at once; a
// directory that cannot be reached ends them after the grace.
func TestUILDAP_Recheck(t *testing.T) {
	slapd := startSlapd(t, true)
	s := uiLDAPRegistry(t, slapd, "1")
	alice := signIn(t, s, "alice", "alice-ldap-pw")
	bob := signIn(t, s, "bob", "bob-ldap-pw")
	carol := signIn(t, s, "carol", "carol-ldap-pw")
	if got := uiRepos(t, s, alice); !slices.Equal(got, []string{"acme/apps/api", "alice/tools"}) {
		t.Fatalf("alice sees %q", got)
	}

	t.Run("group changes apply", func(t *testing.T) {
		// groupOfNames needs a member: replace alice by someone else.
		slapd.ldapTool(t, "ldapmodify", "dn: cn=dev,"+ldapGroupsOU+"\nchangetype: modify\nreplace: member\nmember: uid=nobody,"+ldapPeople+"\n")
		got := waitUI(t, s, alice, "alice loses team dev's acme/apps/api", func(r []string) bool { return !slices.Contains(r, "acme/apps/api") })
		if !slices.Equal(got, []string{"alice/tools"}) {
			t.Errorf("alice, out of group dev, sees %q; want her namespace and still signed in", got)
		}
		slapd.ldapTool(t, "ldapmodify", "dn: cn=ops,"+ldapGroupsOU+"\nchangetype: modify\nadd: member\nmember: uid=carol,"+ldapPeople+"\n")
		waitUI(t, s, carol, "carol gains team ops' acme/db", func(r []string) bool { return slices.Contains(r, "acme/db") })
	})

	t.Run("removed from the directory", func(t *testing.T) {
		slapd.ldapdelete(t, "uid=bob,"+ldapPeople)
		waitUI(t, s, bob, "bob signed out after his removal", signedOut)
		if lines := s.logLines("UI session of an LDAP user ended"); len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "bob") {
			t.Errorf("no log line says bob's session ended: %q", lines)
		}
	})

	t.Run("user revoke --all", func(t *testing.T) {
		if out := s.berth(t, "", "user", "revoke", "carol", "--all"); !strings.Contains(out, "revoked 1 session of carol") {
			t.Errorf("user revoke carol --all: %q", out)
		}
		if uiRepos(t, s, carol) != nil {
			t.Error("carol's directory session outlived user revoke --all")
		}
		_, stderr, err := runBerth(t, t.Context(), strings.NewReader(""), "--data", s.Data, "user", "revoke", "carol", "--all")
		if err == nil || !strings.Contains(stderr, "no user carol") {
			t.Errorf("a second user revoke carol --all: err %v, stderr %q; want an unknown user", err, stderr)
		}
	})

	t.Run("a local user takes the name", func(t *testing.T) {
		carol = signIn(t, s, "carol", "carol-ldap-pw")
		s.addUser(t, "carol", "carol-local-pw")
		if uiRepos(t, s, carol) != nil {
			t.Error("the directory carol's session outlived a local carol's creation")
		}
		local := signIn(t, s, "carol", "carol-local-pw")
		if uiRepos(t, s, local) == nil {
			t.Error("the local carol cannot sign in")
		}
	})

	t.Run("LDAP settings changed", func(t *testing.T) {
		s.ldapSet(t, slapd, "--ui-recheck", "1", "--timeout", "4")
		if uiRepos(t, s, alice) != nil {
			t.Error("alice's session outlived a change of the LDAP settings")
		}
	})

	t.Run("LDAP off", func(t *testing.T) {
		alice = signIn(t, s, "alice", "alice-ldap-pw")
		if uiRepos(t, s, alice) == nil {
			t.Fatal("alice's new session is signed out")
		}
		s.berth(t, "", "ldap", "disable")
		p := getPage(t, s, "/ui/", alice)
		if len(p.find("form", "action", "/ui/signout")) != 0 {
			t.Error("alice's session outlived ldap disable")
		}
		if cleared := slices.ContainsFunc(p.header.Values("Set-Cookie"), func(c string) bool {
			return strings.HasPrefix(c, "berth_session=;") || strings.HasPrefix(c, "berth_session=deleted")
		}); !cleared {
			t.Errorf("ending the session did not clear its cookie: %q", p.header.Values("Set-Cookie"))
		}
	})

	t.Run("directory down", func(t *testing.T) {
		s.ldapSet(t, slapd, "--ui-recheck", "1")
		alice = signIn(t, s, "alice", "alice-ldap-pw")
		slapd.stop()
		pre := signinCSRF(t, s)
		p := doPage(t, formPost(t, s.URL("/ui/signin"), url.Values{"csrf": {pre.Value}, "name": {"alice"}, "password": {"alice-ldap-pw"}}, pre, "http://"+s.Addr))
		if errs := p.find("p", "id", "error"); p.status != http.StatusServiceUnavailable || len(errs) != 1 || !strings.Contains(textOf(errs[0]), "cannot be reached") {
			t.Errorf("UI sign-in with the directory down: status %d, %d error lines", p.status, len(errs))
		}
		// One interval (1 s) plus the grace (one more interval) after the
		// last good check, the session ends.
		waitUI(t, s, alice, "alice signed out while the directory is down", signedOut)
		if lines := s.logLines("UI session of an LDAP user ended"); len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "unavailable") {
			t.Errorf("no log line says alice's session ended for the outage: %q", lines)
		}
	})
}

// TestUILDAP_PageCost measures a web UI page (the repository list) for a
// directory session — without a directory check, and with one (the
// re-check interval, 1 s, waited out before each) — against a local
// user's session. It logs the numbers; it asserts only that every page was
// served signed in.
func TestUILDAP_PageCost(t *testing.T) {
	slapd := startSlapd(t, true)
	s := uiLDAPRegistry(t, slapd, "1")
	alice := signIn(t, s, "alice", "alice-ldap-pw")
	dave := signIn(t, s, "dave", "dave-local-pw")
	page := func(c *http.Cookie) time.Duration {
		start := time.Now()
		repos := uiRepos(t, s, c)
		took := time.Since(start)
		if repos == nil {
			t.Fatal("a page was served signed out")
		}
		return took
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	const rounds = 8
	var checked, unchecked, local []time.Duration
	for range rounds {
		// Wait out the interval: the next page asks the directory, the
		// ones right after it do not.
		time.Sleep(1100 * time.Millisecond)
		checked = append(checked, page(alice))
		for range 5 {
			unchecked = append(unchecked, page(alice))
			local = append(local, page(dave))
		}
	}
	t.Logf("UI repository list, median of %d/%d/%d: directory session with a directory check %v, without %v; local session %v",
		len(checked), len(unchecked), len(local), median(checked), median(unchecked), median(local))
}

// TestUILDAP_RuleTester: the admin pages' rule tester answers for an
// account that exists only in the LDAP directory as its token would be
// answered (a member of the teams its groups map to), says which teams,
// tells an account that is neither local nor in the directory apart, and
// says so when the directory cannot be reached instead of "no user".
func TestUILDAP_RuleTester(t *testing.T) {
	slapd := startSlapd(t, true)
	s := ldapRegistry(t, slapd)
	raw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	root := signIn(t, s, "admin", strings.TrimSpace(string(raw)))
	password := map[string]string{"alice": "alice-ldap-pw", "bob": "bob-ldap-pw", "carol": "carol-ldap-pw"}
	tester := func(account, action, repo string) page {
		t.Helper()
		q := url.Values{"account": {account}, "action": {action}, "repo": {repo}}
		return getPage(t, s, "/ui/admin/rules/test?"+q.Encode(), root)
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		for _, repo := range []string{"acme/apps/api", "acme/db", "other/thing"} {
			granted, r := s.grantedTo(t, user, password[user], repo)
			if r.Status != http.StatusOK {
				t.Fatalf("token for %s: %s", user, r)
			}
			for _, action := range []string{"pull", "push", "delete"} {
				p := tester(user, action, repo)
				answers := p.find("p", "id", "answer")
				if p.status != http.StatusOK || len(answers) != 1 {
					t.Fatalf("tester %s %s %s: status %d, %d answers, errors %q", user, action, repo, p.status, len(answers), errorsOf(p))
				}
				want := "No:"
				if strings.Contains(granted, action) {
					want = "Yes:"
				}
				if got := strings.Fields(textOf(answers[0]))[0]; got != want {
					t.Errorf("tester %s %s %s: %s, the token grants %q", user, action, repo, got, granted)
				}
			}
		}
	}
	for user, want := range map[string]string{
		"alice": "a member of acme/dev through its groups", "bob": "a member of acme/ops through its groups",
		"carol": "in no group mapped to a team",
	} {
		notes := tester(user, "pull", "acme/db").find("p", "id", "directory")
		if len(notes) != 1 || !strings.Contains(textOf(notes[0]), want) {
			t.Errorf("tester %s: the directory note is %d lines, want one saying %q", user, len(notes), want)
		}
	}
	if e := errorsOf(tester("nobody", "pull", "acme/db")); !strings.Contains(e, `no user "nobody": not a local user, and not a user of the LDAP directory`) {
		t.Errorf("tester for a name in neither place: %q", e)
	}
	// A local user is evaluated as before, with no directory note.
	if p := tester("dave", "pull", "acme/db"); len(p.find("p", "id", "answer")) != 1 || len(p.find("p", "id", "directory")) != 0 {
		t.Errorf("tester for local user dave: %d answers, %d directory notes", len(p.find("p", "id", "answer")), len(p.find("p", "id", "directory")))
	}

	slapd.stop()
	p := tester("alice", "pull", "acme/db")
	if e := errorsOf(p); p.status != http.StatusServiceUnavailable || !strings.Contains(e, "the LDAP directory cannot be reached") {
		t.Errorf("tester with the directory down: status %d, %q; want 503 saying the directory cannot be reached", p.status, e)
	}
}

// errorsOf returns the text of the page's error lines.
func errorsOf(p page) string {
	var out []string
	for _, e := range p.find("p", "id", "error") {
		out = append(out, textOf(e))
	}
	return strings.Join(out, "; ")
}
