package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

var (
	pull          = []string{ActionPull}
	pullPush      = []string{ActionPull, ActionPush}
	everyAction   = []string{ActionPull, ActionPush, ActionDelete}
	catalogAction = []string{ActionAll}
)

// caller is who asks in the authorization tables.
type caller struct {
	account string
	admin   bool
}

var (
	alice     = caller{account: "alice"}
	bob       = caller{account: "bob"}
	admin     = caller{account: "root", admin: true}
	anonymous = caller{}
)

type allowedCase struct {
	name      string
	who       caller
	typ, repo string
	requested []string
	want      []string
}

func runAllowed(t *testing.T, a *Authorizer, tests []allowedCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := a.Allowed(tc.who.account, tc.who.admin, tc.typ, tc.repo, tc.requested)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Allowed(account=%q admin=%v, %s:%s:%s) = %q, want %q",
					tc.who.account, tc.who.admin, tc.typ, tc.repo, strings.Join(tc.requested, ","), got, tc.want)
			}
		})
	}
}

func mustAuthorizer(t *testing.T, rules []store.Rule, anonymousPull bool) *Authorizer {
	t.Helper()
	a, err := NewAuthorizer(rules, anonymousPull)
	if err != nil {
		t.Fatalf("NewAuthorizer: %v", err)
	}
	return a
}

func TestAuthorizer_DefaultPolicy(t *testing.T) {
	const repo, reg = TypeRepository, TypeRegistry
	closed := mustAuthorizer(t, nil, false)
	runAllowed(t, closed, []allowedCase{
		{"alice pulls her own", alice, repo, "alice/app", pull, pull},
		{"alice does everything under alice/", alice, repo, "alice/app", everyAction, everyAction},
		{"alice at any depth under alice/", alice, repo, "alice/team/app", everyAction, everyAction},
		{"alice asks * on her own", alice, repo, "alice/app", []string{"*"}, []string{"*"}},
		{"alice pulls bob's", alice, repo, "bob/app", pull, pull},
		{"alice only pulls bob's", alice, repo, "bob/app", everyAction, pull},
		{"alice cannot * bob's", alice, repo, "bob/app", []string{"*"}, nil},
		{"alice pulls a top-level repo", alice, repo, "alpine", pullPush, pull},
		{"prefix is a path, not a string", alice, repo, "alicesmith/app", everyAction, pull},
		{"repo named like the account is not under it", alice, repo, "alice", everyAction, pull},
		{"bob pushes his own", bob, repo, "bob/app", pullPush, pullPush},
		{"bob only pulls alice's", bob, repo, "alice/app", everyAction, pull},
		{"admin does everything anywhere", admin, repo, "alice/app", everyAction, everyAction},
		{"admin *", admin, repo, "x", []string{"*"}, []string{"*"}},
		{"anonymous nothing", anonymous, repo, "alice/app", everyAction, nil},
		{"unknown actions dropped", alice, repo, "alice/app", []string{"pull", "frobnicate", "pull"}, pull},
		{"plugin class counts as repository", alice, "repository(plugin)", "alice/app", pullPush, pullPush},
		{"unknown type granted nothing", admin, "frobnicator", "alice/app", pull, nil},
		{"catalog for signed-in", alice, reg, CatalogName, catalogAction, catalogAction},
		{"catalog for admin", admin, reg, CatalogName, catalogAction, catalogAction},
		{"no catalog for anonymous", anonymous, reg, CatalogName, catalogAction, nil},
		{"registry other than catalog", admin, reg, "other", catalogAction, nil},
		{"catalog pull is not an action", alice, reg, CatalogName, pull, nil},
	})

	open := mustAuthorizer(t, nil, true)
	runAllowed(t, open, []allowedCase{
		{"anonymous pulls with anonymous pull", anonymous, repo, "alice/app", everyAction, pull},
		{"anonymous catalog with anonymous pull", anonymous, reg, CatalogName, catalogAction, catalogAction},
		{"alice unchanged", alice, repo, "bob/app", everyAction, pull},
	})
}

// docker_auth-style rules exercising every kind of pattern.
var matrixRules = []store.Rule{
	{Account: "/^ci-[a-z]+$/", Name: "builds/*", Actions: pullPush, Comment: "regex account"},
	{Account: "bob", Name: "shared/*", Actions: pull, Comment: "bob read-only, before the broader rule"},
	{Account: "/.+/", Name: "shared/*", Actions: []string{"*"}},
	{Account: "/.+/", Name: "${account}/*", Actions: everyAction},
	{Account: "/.+/", Name: "library/*", Actions: pull},
	{Account: "", Name: "public/*", Actions: pull, Comment: "anonymous only"},
	{Account: "alice", Type: TypeRegistry, Name: CatalogName, Actions: pull, Comment: "catalog denied to alice"},
}

func TestAuthorizer_Rules(t *testing.T) {
	const repo, reg = TypeRepository, TypeRegistry
	a := mustAuthorizer(t, matrixRules, false)
	ci := caller{account: "ci-main"}
	runAllowed(t, a, []allowedCase{
		{"alice owns alice/*", alice, repo, "alice/app", everyAction, everyAction},
		{"glob * stops at slash", alice, repo, "shared/team/app", pull, nil},
		{"personal namespace at any depth, rules or not", alice, repo, "alice/team/app", everyAction, everyAction},
		{"alice pulls library", alice, repo, "library/alpine", everyAction, pull},
		{"alice no access to bob's", alice, repo, "bob/app", pull, nil},
		{"default deny for top-level", alice, repo, "alpine", pull, nil},
		{"rule * grants what is asked", alice, repo, "shared/x", everyAction, everyAction},
		{"rule order: bob's own rule comes first", bob, repo, "shared/x", everyAction, pull},
		{"bob owns bob/*", bob, repo, "bob/app", pullPush, pullPush},
		{"regex account ci pushes builds", ci, repo, "builds/app", everyAction, pullPush},
		{"regex account is anchored by its ^$", caller{account: "xci-main"}, repo, "builds/app", pull, nil},
		{"ci gets ${account} namespace too", ci, repo, "ci-main/app", pull, pull},
		{"anonymous pulls public", anonymous, repo, "public/app", everyAction, pull},
		{"signed-in callers do not match account \"\"", alice, repo, "public/app", pull, nil},
		{"anonymous nothing else", anonymous, repo, "library/alpine", pull, nil},
		{"anonymous has no ${account} namespace", anonymous, repo, "/app", pull, nil},
		{"admin ignores rules", admin, repo, "alpine", everyAction, everyAction},
		{"catalog rule denies alice", alice, reg, CatalogName, catalogAction, nil},
		{"catalog falls back to signed-in", bob, reg, CatalogName, catalogAction, catalogAction},
		{"catalog not for anonymous", anonymous, reg, CatalogName, catalogAction, nil},
		{"admin catalog despite rules", caller{account: "alice", admin: true}, reg, CatalogName, catalogAction, catalogAction},
	})

	withAnonPull := mustAuthorizer(t, matrixRules, true)
	runAllowed(t, withAnonPull, []allowedCase{
		{"anonymous pull adds pull anywhere", anonymous, repo, "alice/app", everyAction, pull},
		{"anonymous pull with matching rule", anonymous, repo, "public/app", pull, pull},
		{"anonymous pull grants no push", anonymous, repo, "public/app", []string{"push"}, nil},
		{"anonymous pull does not widen alice", alice, repo, "bob/app", pull, nil},
		{"anonymous catalog with anonymous pull", anonymous, reg, CatalogName, catalogAction, catalogAction},
	})
}

// TestAuthorizer_AccountInjection checks that an account name full of
// pattern syntax is matched as the literal text it is.
func TestAuthorizer_AccountInjection(t *testing.T) {
	const repo = TypeRepository
	rules := []store.Rule{
		{Account: "/.+/", Name: "${account}/*", Actions: everyAction},
		{Account: "/.+/", Name: `/^team-${account}\/.+$/`, Actions: pull},
		{Account: "/.+/", Name: "${account}", Actions: pull},
	}
	a := mustAuthorizer(t, rules, false)
	who := func(name string) caller { return caller{account: name} }
	runAllowed(t, a, []allowedCase{
		{"glob star account", who("*"), repo, "bob/app", pull, nil},
		{"glob star account, own namespace", who("*"), repo, "*/app", pull, pull},
		{"glob question account", who("???"), repo, "bob/app", pull, nil},
		{"glob class account", who("[a-z]*"), repo, "bob/app", pull, nil},
		{"glob escape account", who(`\b\o\b`), repo, "bob/app", pull, nil},
		{"regex dot account", who(".*"), repo, "team-bob/app", pull, nil},
		{"regex alternation account", who("x|bob"), repo, "team-bob/app", pull, nil},
		{"regex account literal", who("x|bob"), repo, "team-x|bob/app", pull, pull},
		{"account cannot become a regex", who("/.*/"), repo, "bob", pull, nil},
		{"account as exact name", who("bob"), repo, "bob", pull, pull},
	})
}

func TestPattern_Match(t *testing.T) {
	tests := []struct {
		name, pattern, account, value string
		want                          bool
	}{
		{"exact", "alice/app", "", "alice/app", true},
		{"exact differs", "alice/app", "", "alice/app2", false},
		{"empty matches only empty", "", "", "", true},
		{"empty is not any", "", "", "alice", false},
		{"star", "alice/*", "", "alice/app", true},
		{"star not across slash", "alice/*", "", "alice/a/b", false},
		{"star matches empty", "*", "", "", true},
		{"question", "app?", "", "app1", true},
		{"class", "app[0-9]", "", "app7", true},
		{"class miss", "app[0-9]", "", "appx", false},
		{"escaped star is literal", `a\*`, "", "a*", true},
		{"escaped star no glob", `a\*`, "", "ab", false},
		{"regex", "/^lib/", "", "library/x", true},
		{"regex unanchored like docker_auth", "/admin/", "", "sysadmin2", true},
		{"regex anchored by the author", "/^admin$/", "", "sysadmin", false},
		{"two slashes is exact", "//", "", "//", true},
		{"account in glob", "${account}/*", "al.ice", "al.ice/app", true},
		{"account in regex", "/^${account}$/", "al.ice", "al.ice", true},
		{"account in regex quoted", "/^${account}$/", "al.ice", "alxice", false},
		{"account in exact", "u-${account}", "a*", "u-a*", true},
		{"account in exact stays exact", "u-${account}", "a*", "u-ab", false},
		{"** covers one level", "apps/**", "", "apps/app", true},
		{"** covers depth", "apps/**", "", "apps/team/app", true},
		{"** needs the slash", "apps/**", "", "apps", false},
		{"** is anchored", "apps/**", "", "xapps/app", false},
		{"lone ** matches everything", "**", "", "a/b/c", true},
		{"* beside ** stops at slash", "*/x/**", "", "a/b/x/c", false},
		{"* beside ** one component", "*/x/**", "", "a/x/c/d", true},
		{"dot in deep glob is literal", "a.b/**", "", "aXb/c", false},
		{"account in deep glob", "${account}/**", "al.ice", "al.ice/a/b", true},
		{"account in deep glob quoted", "${account}/**", "al.ice", "alXice/a/b", false},
		{"escaped star in deep glob", `a\*/**`, "", "a*/x", true},
		{"escaped star in deep glob no glob", `a\*/**`, "", "ab/x", false},
		{"class in deep glob", "app[0-9]/**", "", "app7/x", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := compilePattern(tc.pattern)
			if err != nil {
				t.Fatalf("compilePattern(%q): %v", tc.pattern, err)
			}
			if got := p.match(tc.account, tc.value); got != tc.want {
				t.Fatalf("pattern %q, account %q, value %q: match = %v, want %v", tc.pattern, tc.account, tc.value, got, tc.want)
			}
		})
	}
}

func TestValidateRule(t *testing.T) {
	tests := []struct {
		name string
		rule store.Rule
		ok   bool
	}{
		{"exact", store.Rule{Account: "alice", Name: "alice/app", Actions: pull}, true},
		{"anonymous glob", store.Rule{Name: "public/*", Actions: pull}, true},
		{"regex with account", store.Rule{Account: "/.+/", Name: "/^${account}\\/.*$/", Actions: []string{"*"}}, true},
		{"registry type", store.Rule{Account: "*", Type: "registry", Name: "catalog", Actions: []string{"*"}}, true},
		{"bad regex", store.Rule{Account: "/[/", Name: "x", Actions: pull}, false},
		{"bad regex in name", store.Rule{Name: "/(${account}/", Actions: pull}, false},
		{"bad glob", store.Rule{Name: "app[", Actions: pull}, false},
		{"bad type pattern", store.Rule{Type: "[", Name: "x", Actions: pull}, false},
		{"unknown action", store.Rule{Name: "x", Actions: []string{"write"}}, false},
		{"no actions", store.Rule{Name: "x"}, false},
		{"empty name", store.Rule{Account: "alice", Actions: pull}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRule(tc.rule)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateRule(%+v) = %v, want ok=%v", tc.rule, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrRuleInvalid) {
				t.Fatalf("ValidateRule(%+v) = %v, want ErrRuleInvalid", tc.rule, err)
			}
		})
	}
	if _, err := NewAuthorizer([]store.Rule{{Name: "ok", Actions: pull}, {Name: "x", Actions: []string{"write"}}}, false); err == nil ||
		!strings.Contains(err.Error(), "rule 1") {
		t.Fatalf("NewAuthorizer with a bad second rule = %v, want an error naming rule 1", err)
	}
}

// FuzzAccountSubstitution checks that ${account} is replaced by the account
// as literal text in every pattern kind: the pattern matches the account's
// own value and nothing a different account would own.
func FuzzAccountSubstitution(f *testing.F) {
	f.Add("alice", "bob")
	f.Add("*", "bob")
	f.Add(".*", "x")
	f.Add(`a\`, "a")
	f.Add("[a-z]", "b")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, account, other string) {
		if account != "" && store.ValidateUserName(account) != nil {
			t.Skip("not an account name berth stores")
		}
		if strings.Contains(account, "/") || strings.Contains(other, "/") || account == other {
			t.Skip("glob * cannot cross '/', and equal accounts own the same names")
		}
		for _, raw := range []string{"${account}/*", "/^${account}\\/.*$/", "${account}"} {
			p, err := compilePattern(raw)
			if err != nil {
				t.Fatalf("compilePattern(%q): %v", raw, err)
			}
			own := account + "/app"
			theirs := other + "/app"
			if raw == "${account}" {
				own, theirs = account, other
			}
			if !p.match(account, own) {
				t.Fatalf("pattern %q for account %q does not match %q", raw, account, own)
			}
			if p.match(account, theirs) {
				t.Fatalf("pattern %q for account %q matches %q", raw, account, theirs)
			}
		}
	})
}
