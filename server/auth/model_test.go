package auth

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

// TestPattern_DeepGlobInvalid: a glob with ** that cannot become a regular
// expression is refused when the rule is added, not matched as nothing.
func TestPattern_DeepGlobInvalid(t *testing.T) {
	for _, bad := range []string{"a/**[", `a/**\`, "a/**[]"} {
		if _, err := compilePattern(bad); err == nil {
			t.Errorf("compilePattern(%q) = nil error, want one", bad)
		}
	}
}

// TestAuthorizer_AnonymousIsExplicit: no pattern matches the anonymous
// caller; only the account "" does.
func TestAuthorizer_AnonymousIsExplicit(t *testing.T) {
	const repo = TypeRepository
	for _, account := range []string{"*", "/.*/", "**", "/.+/", "?*"} {
		a := mustAuthorizer(t, []store.Rule{{Account: account, Name: "**", Actions: pull}}, false)
		runAllowed(t, a, []allowedCase{
			{"account " + account + " skips anonymous", anonymous, repo, "apps/app", pull, nil},
			{"account " + account + " matches alice", alice, repo, "apps/app", pull, pull},
		})
	}
	a := mustAuthorizer(t, []store.Rule{{Account: "", Name: "apps/**", Actions: pull}}, false)
	runAllowed(t, a, []allowedCase{
		{"account \"\" is anonymous", anonymous, repo, "apps/team/app", pull, pull},
		{"account \"\" is not alice", alice, repo, "apps/team/app", pull, nil},
	})
}

// accessModel is organizations acme and beta: acme/dev writes acme/apps/**,
// acme/ops is admin of acme, user carol reads acme/tools/x; acme/web and
// the beta namespace are public, beta/secret private again.
func accessModel() store.Model {
	return store.Model{
		Orgs: []store.Org{{Name: "acme"}, {Name: "beta"}},
		Teams: []store.Team{
			{Org: "acme", Name: "dev", Members: []string{"alice"}},
			{Org: "acme", Name: "ops", Members: []string{"bob"}, LDAPGroup: "cn=ops,ou=groups,dc=example,dc=org"},
		},
		Grants: []store.Grant{
			{Org: "acme", Repos: "acme/apps/**", Team: "dev", Level: store.LevelWrite},
			{Org: "acme", Team: "ops", Level: store.LevelAdmin},
			{Org: "acme", Repos: "acme/tools/x", User: "carol", Level: store.LevelRead},
		},
		Visibility: []store.Visibility{{Name: "acme/web", Public: true}, {Name: "beta", Public: true}, {Name: "beta/secret", Public: false}},
	}
}

func TestAuthorizer_Model(t *testing.T) {
	const repo, reg = TypeRepository, TypeRegistry
	rules := []store.Rule{{Account: "/.+/", Name: "library/**", Actions: pull}}
	a, err := NewModelAuthorizer(accessModel(), rules, false)
	if err != nil {
		t.Fatal(err)
	}
	carol := caller{account: "carol"}
	runAllowed(t, a, []allowedCase{
		{"team write on pattern", alice, repo, "acme/apps/web", everyAction, pullPush},
		{"team write at depth", alice, repo, "acme/apps/a/b", []string{"*"}, nil},
		{"team write outside pattern", alice, repo, "acme/db", everyAction, nil},
		{"team admin on org", bob, repo, "acme/db", everyAction, everyAction},
		{"team admin gets *", bob, repo, "acme/apps/web", []string{"*"}, []string{"*"}},
		{"admin of acme not of beta", bob, repo, "beta/x", everyAction, pull},
		{"user grant", carol, repo, "acme/tools/x", everyAction, pull},
		{"user grant exact only", carol, repo, "acme/tools/y", pull, nil},
		{"public repo for anonymous", anonymous, repo, "acme/web", everyAction, pull},
		{"public repo for users", carol, repo, "acme/web", everyAction, pull},
		{"public namespace", anonymous, repo, "beta/a/b", pull, pull},
		{"private inside public namespace", anonymous, repo, "beta/secret", pull, nil},
		{"private by default", anonymous, repo, "acme/db", pull, nil},
		{"rules add to the model", carol, repo, "library/alpine", pullPush, pull},
		{"personal namespace with rules", carol, repo, "carol/x", everyAction, everyAction},
		{"catalog for anonymous when something is public", anonymous, reg, CatalogName, catalogAction, catalogAction},
	})
	ops := Principal{Name: "dave", Teams: a.TeamsOfGroups([]string{"CN=ops,ou=groups,dc=example,dc=org", "cn=other"})}
	if got := a.AllowedTo(ops, repo, "acme/db", []string{"delete"}); len(got) != 1 {
		t.Fatalf("LDAP group member of acme/ops: delete on acme/db = %q, want [delete] (teams %q)", got, ops.Teams)
	}
}

func TestAuthorizer_Explain(t *testing.T) {
	a, err := NewModelAuthorizer(accessModel(), []store.Rule{{Account: "/.+/", Name: "team/**", Actions: pull}}, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, account, act, repo string
		allowed                  bool
		reason                   string
	}{
		{"grant", "alice", "push", "acme/apps/web", true, "grant: team acme/dev has write on acme/apps/**"},
		{"org grant", "bob", "delete", "acme/db", true, "grant: team acme/ops has admin on acme/**"},
		{"public", "", "pull", "acme/web", true, "acme/web is public"},
		{"namespace", "alice", "delete", "alice/x", true, "personal namespace alice/"},
		{"rule", "alice", "pull", "team/x", true, "rule 1 (account /.+/, name team/**, actions pull)"},
		{"rule without the action", "alice", "push", "team/x", false, "rule 1 (account /.+/, name team/**, actions pull) matched first and does not grant it"},
		{"nothing", "alice", "pull", "other/x", false, "no grant, visibility or rule grants it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := a.Explain(Principal{Name: tc.account}, TypeRepository, tc.repo, tc.act)
			if d.Allowed != tc.allowed || !strings.HasPrefix(d.Reason, tc.reason) {
				t.Fatalf("Explain(%q, %s, %s) = %+v, want allowed=%v reason %q", tc.account, tc.act, tc.repo, d, tc.allowed, tc.reason)
			}
		})
	}
}

func TestAuthorizer_CanManage(t *testing.T) {
	m := accessModel()
	m.Grants = append(m.Grants, store.Grant{Org: "acme", Repos: "acme/x/**", User: "carol", Level: store.LevelAdmin})
	a, err := NewModelAuthorizer(m, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    Principal
		org  string
		want bool
	}{
		{"registry admin", Principal{Name: "root", Admin: true}, "beta", true},
		{"admin of acme through team ops", Principal{Name: "bob"}, "acme", true},
		{"not of beta", Principal{Name: "bob"}, "beta", false},
		{"write is not admin", Principal{Name: "alice"}, "acme", false},
		{"admin of a pattern is not of the organization", Principal{Name: "carol"}, "acme", false},
		{"anonymous", Principal{}, "acme", false},
		{"through an LDAP group's team", Principal{Name: "dora", Teams: []string{"acme/ops"}}, "acme", true},
	} {
		if got := a.CanManage(tc.p, tc.org); got != tc.want {
			t.Errorf("%s: CanManage(%+v, %s) = %v, want %v", tc.name, tc.p, tc.org, got, tc.want)
		}
	}
}
