package integration

// LDAP sign-in against a real slapd (ldap_harness_test.go): teams from
// memberOf and from a group search, the order of local and LDAP users,
// filter injection, a user removed mid-session, the directory going down,
// and the cost of a sign-in through /token.

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// ldapRegistry starts a registry with org acme: team dev (LDAP group dev)
// writes acme/apps/**, team ops (LDAP group ops) is admin of acme; a local
// user dave.
func ldapRegistry(t *testing.T, slapd *slapdServer, extra ...string) *server {
	t.Helper()
	s, _ := startAuthServer(t, "")
	s.addUser(t, "dave", "dave-local-pw")
	for _, cmd := range [][]string{
		{"org", "add", "acme"},
		{"team", "add", "acme/dev"},
		{"team", "add", "acme/ops"},
		{"team", "ldap-group", "acme/dev", "cn=dev," + ldapGroupsOU},
		{"team", "ldap-group", "acme/ops", "CN=ops," + ldapGroupsOU}, // DNs compare without case
		{"org", "grant", "acme", "--team", "dev", "--level", "write", "--repos", "acme/apps/**"},
		{"org", "grant", "acme", "--team", "ops", "--level", "admin"},
	} {
		s.berth(t, "", cmd...)
	}
	s.ldapSet(t, slapd, extra...)
	return s
}

// grantedTo asks /token for scope as user and returns the actions granted
// on repo, or the reply when /token refused.
func (s *server) grantedTo(t *testing.T, user, password, repo string) (string, reply) {
	t.Helper()
	r := s.getToken(t, user, password, url.Values{"service": {"berth"}, "scope": {"repository:" + repo + ":pull,push,delete"}})
	if r.Status != http.StatusOK {
		return "", r
	}
	_, claims := wantToken(t, r)
	got := claims.granted("repository", repo)
	sort.Strings(got)
	return strings.Join(got, ","), r
}

func TestLDAP_MemberOf(t *testing.T) {
	slapd := startSlapd(t, true)
	s := ldapRegistry(t, slapd)

	t.Run("ldap test and show", func(t *testing.T) {
		out := s.berth(t, "", "ldap", "test", "alice")
		want := "dn: uid=alice," + ldapPeople + "\ngroup: cn=dev," + ldapGroupsOU + "\nteams: acme/dev\n"
		if out != want {
			t.Errorf("ldap test alice:\n got %q\nwant %q", out, want)
		}
		want = "allowed: bob delete acme/db: grant: team acme/ops has admin on acme/**\nnote: bob is an LDAP user (uid=bob," + ldapPeople + "), in teams acme/ops\n"
		if out := s.berth(t, "", "access", "explain", "bob", "delete", "acme/db"); out != want {
			t.Errorf("access explain bob delete acme/db:\n got %q\nwant %q", out, want)
		}
		if show := s.berth(t, "", "ldap", "show"); strings.Contains(show, ldapRootPW) || !strings.Contains(show, "bind-password: (set)") || !strings.Contains(show, "groups: memberOf") {
			t.Errorf("ldap show:\n%s", show)
		}
	})

	t.Run("grants through mapped groups", func(t *testing.T) {
		for _, tc := range []struct{ user, password, repo, want string }{
			{"alice", "alice-ldap-pw", "acme/apps/api", "pull,push"},
			{"alice", "alice-ldap-pw", "acme/db", "pull"}, // no rules: the default pull
			{"alice", "alice-ldap-pw", "alice/tools", "delete,pull,push"},
			{"bob", "bob-ldap-pw", "acme/db", "delete,pull,push"},
			{"carol", "carol-ldap-pw", "acme/apps/api", "pull"},
		} {
			got, r := s.grantedTo(t, tc.user, tc.password, tc.repo)
			if r.Status != http.StatusOK || got != tc.want {
				t.Errorf("%s on %s: status %d, granted %q, want %q", tc.user, tc.repo, r.Status, got, tc.want)
			}
		}
		// The same with Basic auth straight to /v2/ and with the token.
		if !s.probe(t, basicAuth("alice", "alice-ldap-pw"), "acme/apps/api", "push") {
			t.Error("alice (LDAP, team acme/dev) cannot push acme/apps/api with Basic auth")
		}
		if s.probe(t, basicAuth("alice", "alice-ldap-pw"), "acme/db", "push") {
			t.Error("alice may push acme/db")
		}
		tok, _ := wantToken(t, s.getToken(t, "bob", "bob-ldap-pw", url.Values{"service": {"berth"}, "scope": {"repository:acme/db:delete"}}))
		if !s.probe(t, bearer(tok.Token), "acme/db", "delete") {
			t.Error("bob's token (LDAP, team acme/ops) cannot delete in acme/db")
		}
	})

	t.Run("wrong, empty and injected credentials", func(t *testing.T) {
		for _, tc := range []struct{ user, password string }{
			{"alice", "wrong-password"},
			{"alice", ""},
			{"nobody", "alice-ldap-pw"},
			{"*", "alice-ldap-pw"},
			{"*)(uid=*", "alice-ldap-pw"},
			{"alic*", "alice-ldap-pw"},
		} {
			if r := s.getToken(t, tc.user, tc.password, url.Values{"service": {"berth"}}); r.Status != http.StatusUnauthorized {
				t.Errorf("/token as %q: status %d, want 401", tc.user, r.Status)
			}
		}
		// ldap test takes any name: the filter is escaped, so "alic*" is
		// not a wildcard that finds alice, nor "*)(uid=*" a wider filter.
		for _, name := range []string{"alic*", "*)(uid=*", "*"} {
			_, stderr, err := runBerth(t, t.Context(), strings.NewReader(""), "--data", s.Data, "ldap", "test", name)
			if err == nil || !strings.Contains(stderr, "no LDAP user "+name) {
				t.Errorf("ldap test %q: err %v, stderr %q; want no LDAP user", name, err, stderr)
			}
		}
	})

	t.Run("local users first", func(t *testing.T) {
		s.addUser(t, "carol", "carol-local-pw")
		if r := s.getToken(t, "carol", "carol-ldap-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusUnauthorized {
			t.Errorf("carol with her LDAP password while a local carol exists: status %d, want 401", r.Status)
		}
		if r := s.getToken(t, "carol", "carol-local-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusOK {
			t.Errorf("local carol: status %d", r.Status)
		}
		_, stderr, err := runBerth(t, t.Context(), strings.NewReader(""), "--data", s.Data, "ldap", "test", "carol")
		if err == nil || !strings.Contains(stderr, "carol is also a local user") {
			t.Errorf("ldap test carol: err %v, stderr %q", err, stderr)
		}
	})

	t.Run("no refresh token for directory users", func(t *testing.T) {
		r := s.postToken(t, url.Values{"grant_type": {"password"}, "service": {"berth"}, "username": {"bob"}, "password": {"bob-ldap-pw"}, "access_type": {"offline"}})
		answer, _ := wantToken(t, r)
		if answer.RefreshToken != "" {
			t.Error("an LDAP sign-in got a refresh token, which would outlive the user's removal from the directory")
		}
	})

	t.Run("user removed mid-session", func(t *testing.T) {
		tok, _ := wantToken(t, s.getToken(t, "alice", "alice-ldap-pw", url.Values{"service": {"berth"}, "scope": {"repository:acme/apps/api:pull,push"}}))
		slapd.ldapdelete(t, "uid=alice,"+ldapPeople)
		// The token she holds lasts its TTL (--token-ttl); the next one is
		// refused.
		if !s.probe(t, bearer(tok.Token), "acme/apps/api", "push") {
			t.Error("alice's token died before its TTL")
		}
		if r := s.getToken(t, "alice", "alice-ldap-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusUnauthorized {
			t.Errorf("/token for alice after her removal from LDAP: status %d, want 401", r.Status)
		}
	})

	t.Run("directory down", func(t *testing.T) {
		slapd.stop()
		r := s.getToken(t, "bob", "bob-other-pw", url.Values{"service": {"berth"}})
		e := wantError(t, r, http.StatusServiceUnavailable, "UNAUTHORIZED")
		if !strings.Contains(e.Message, "LDAP directory cannot be reached") {
			t.Errorf("message %q", e.Message)
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("bob", "bob-other-pw")), http.StatusServiceUnavailable, "UNAUTHORIZED")
		if r := s.getToken(t, "dave", "dave-local-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusOK {
			t.Errorf("local dave while LDAP is down: status %d, want 200", r.Status)
		}
		if lines := s.logLines("LDAP sign-in"); len(lines) == 0 || !strings.Contains(lines[0], slapd.addr) {
			t.Errorf("no log line says which directory failed: %q", lines)
		}
	})

	for _, pw := range []string{"alice-ldap-pw", "bob-ldap-pw", "carol-ldap-pw", "bob-other-pw", ldapRootPW} {
		if strings.Contains(s.Log(), pw) {
			t.Errorf("the server's log holds the password %q", pw)
		}
	}
}

// TestLDAP_GroupSearch: a directory without the memberof overlay; groups
// come from a search (member=<user DN>).
func TestLDAP_GroupSearch(t *testing.T) {
	slapd := startSlapd(t, false)
	s := ldapRegistry(t, slapd, "--group-filter", "(&(objectClass=groupOfNames)(member=%s))", "--group-base-dn", ldapGroupsOU)
	if out := s.berth(t, "", "ldap", "test", "bob"); out != "dn: uid=bob,"+ldapPeople+"\ngroup: cn=ops,"+ldapGroupsOU+"\nteams: acme/ops\n" {
		t.Errorf("ldap test bob: %q", out)
	}
	if got, r := s.grantedTo(t, "bob", "bob-ldap-pw", "acme/db"); got != "delete,pull,push" {
		t.Errorf("bob on acme/db: status %d, granted %q, want delete,pull,push", r.Status, got)
	}
	if got, _ := s.grantedTo(t, "alice", "alice-ldap-pw", "acme/apps/x"); got != "pull,push" {
		t.Errorf("alice on acme/apps/x: granted %q, want pull,push", got)
	}
	// Without memberOf, a user's groups are only what the search finds.
	slapd.ldapadd(t, "dn: cn=ops2,"+ldapGroupsOU+"\nobjectClass: groupOfNames\ncn: ops2\nmember: uid=carol,"+ldapPeople+"\n")
	if out := s.berth(t, "", "ldap", "test", "carol"); !strings.Contains(out, "group: cn=ops2,") || !strings.Contains(out, "teams: \n") {
		t.Errorf("ldap test carol: %q", out)
	}

	s.berth(t, "", "ldap", "disable")
	if out := s.berth(t, "", "ldap", "show"); out != "LDAP sign-in is off\n" {
		t.Errorf("ldap show after disable: %q", out)
	}
	if r := s.getToken(t, "bob", "bob-ldap-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusUnauthorized {
		t.Errorf("/token for bob with LDAP off: status %d, want 401", r.Status)
	}
	if r := s.getToken(t, "dave", "dave-local-pw", url.Values{"service": {"berth"}}); r.Status != http.StatusOK {
		t.Errorf("local dave with LDAP off: status %d", r.Status)
	}
}

// TestLDAP_SignInCost measures an LDAP sign-in through /token (each user
// signs in once, so none is answered from the one-minute cache) against a
// local user's bcrypt sign-in. It logs the numbers; it asserts only that
// every sign-in succeeded.
func TestLDAP_SignInCost(t *testing.T) {
	slapd := startSlapd(t, true)
	const n = 40
	var ldif strings.Builder
	for i := range n {
		fmt.Fprintf(&ldif, "dn: uid=u%d,%s\nobjectClass: inetOrgPerson\nuid: u%d\ncn: U\nsn: U\nuserPassword: pw-%d\n\n", i, ldapPeople, i, i)
	}
	slapd.ldapadd(t, ldif.String())
	s := ldapRegistry(t, slapd)
	for i := range n {
		s.addUser(t, fmt.Sprintf("l%d", i), fmt.Sprintf("local-pw-%d", i))
	}
	measure := func(user func(int) (string, string)) []time.Duration {
		var took []time.Duration
		for i := range n {
			name, pw := user(i)
			start := time.Now()
			r := s.getToken(t, name, pw, url.Values{"service": {"berth"}, "scope": {"repository:acme/apps/x:pull"}})
			took = append(took, time.Since(start))
			if r.Status != http.StatusOK {
				t.Fatalf("/token as %s: %s", name, r)
			}
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		return took
	}
	ldapTook := measure(func(i int) (string, string) { return fmt.Sprintf("u%d", i), fmt.Sprintf("pw-%d", i) })
	localTook := measure(func(i int) (string, string) { return fmt.Sprintf("l%d", i), fmt.Sprintf("local-pw-%d", i) })
	t.Logf("sign-in through /token, %d users each: LDAP median %v p90 %v; local (bcrypt) median %v p90 %v",
		n, ldapTook[n/2], ldapTook[n*9/10], localTook[n/2], localTook[n*9/10])
}
