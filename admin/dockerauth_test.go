package admin

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

func TestACLImport(t *testing.T) {
	config, err := os.ReadFile("testdata/auth_config.yml")
	if err != nil {
		t.Fatal(err)
	}
	tw := newTwin(t)
	both(t, tw, ACLAddOp, ACLAdd{Account: str("old"), Name: str("old/*"), Actions: "pull"}, "")
	both(t, tw, UserAddOp, UserAdd{Name: "alice", NewPassword: NewPassword{PasswordHash: testHash(t, "old")}, Admin: true}, "")

	refused := both(t, tw, ACLImportOp, ACLImport{File: "-"}, "users:\n  alice:\n    password: \""+hash2a+"\"\n")
	if refused.out != "the file has no acl: section: access rules left as they are\n" ||
		refused.err != "imported 0, refused 1: alice (exists with another password; --overwrite replaces it)" {
		t.Fatalf("acl import over alice without --overwrite: got\n%s", refused)
	}

	got := both(t, tw, ACLImportOp, ACLImport{File: "-", Overwrite: true}, string(config))
	wantOut := "added user admin\n" +
		"updated the password of alice\n" +
		"added user ci\n" +
		`skipped user "": anonymous access needs no user in berth (see serve --anonymous-pull and rules with account "")` + "\n" +
		"replaced 2 access rules with the 6 of the file\n"
	wantErr := "imported 3, refused 1: legacy (MD5 ($apr1$), not bcrypt)"
	if got.out != wantOut || got.err != wantErr {
		t.Fatalf("acl import: got\n%s\nwant stdout %q\nerror %q", got, wantOut, wantErr)
	}

	alice, err := tw.remote.User("alice")
	if err != nil || !alice.Admin || !strings.HasPrefix(string(alice.PasswordHash), "$2y$04$erf0") {
		t.Errorf("alice after import: %+v, %v; want her new hash, still admin", alice, err)
	}

	// The imported rules mean what they meant to docker_auth.
	rules, err := tw.remote.Rules()
	if err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(rules, false)
	if err != nil {
		t.Fatalf("the server cannot compile the imported rules: %v", err)
	}
	all := []string{"pull", "push", "delete"}
	tests := []struct {
		account, typ, name string
		want               []string
	}{
		{"admin", "repository", "anything/at/all", all},
		{"admin", "registry", "catalog", []string{"*"}},
		{"ci", "registry", "catalog", []string{"*"}},
		{"ci", "repository", "alice/app", []string{"pull"}},
		{"alice", "repository", "alice/app", all},
		{"alice", "repository", "bob/app", nil},
		{"alice", "repository", "shared/tools", []string{"pull", "push"}},
		{"bob", "repository", "bob/app", all},
		{"", "repository", "public/base", []string{"pull"}},
		{"", "repository", "public/deep/base", nil},
		{"", "repository", "alice/app", nil},
	}
	for _, tc := range tests {
		requested := all
		if tc.typ == "registry" {
			requested = []string{"*"}
		}
		if got := authz.Allowed(tc.account, false, tc.typ, tc.name, requested); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("account %q on %s %s: allowed %q, want %q", tc.account, tc.typ, tc.name, got, tc.want)
		}
	}
}

func TestACLImport_RefusesWholeFile(t *testing.T) {
	const user = "users:\n  dora:\n    password: \"" + hash2a + "\"\n"
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{"ip match", user + "acl:\n  - match: {account: dora, ip: 10.0.0.0/8}\n    actions: [pull]\n", `acl entry 1: match on "ip" is not supported by berth (only account, name and type)`},
		{"labels match", "acl:\n  - match: {account: dora}\n    actions: [pull]\n  - match: {labels: {group: dev}}\n    actions: [pull]\n", `acl entry 2: match on "labels" is not supported by berth (only account, name and type)`},
		{"list as account", "acl:\n  - match: {account: [a, b]}\n    actions: [pull]\n", "acl entry 1: match account on line 2 is not a string"},
		{"type error", "acl:\n  - match: {account: a}\n    actions: {pull: yes}\n", "parse auth_config.yml: line 3: cannot unmarshal !!map into []string"},
		{"labels placeholder", "acl:\n  - match: {name: \"${labels:group}/*\"}\n    actions: [pull]\n", `acl entry 1: name "${labels:group}/*" uses ${labels:group}: berth substitutes only ${account}`},
		{"explicit deny", "acl:\n  - match: {account: dora}\n    actions: []\n", "acl entry 1: actions: [] (an explicit deny) is not supported by berth"},
		{"no actions", "acl:\n  - match: {account: dora}\n", "acl entry 1: no actions: list"},
		{"unknown action", "acl:\n  - match: {account: dora}\n    actions: [pull, build]\n", `acl entry 1: invalid access rule: unknown action "build"`},
		{"bad regex", "acl:\n  - match: {name: \"/a(/\"}\n    actions: [pull]\n", "acl entry 1: invalid access rule: name: pattern"},
		{"empty acl", user + "acl: []\n", "acl: is empty, which in docker_auth denies everyone"},
		{"not yaml", "acl: [\n", "parse auth_config.yml: yaml:"},
		{"repeated user", "users:\n  dora: {}\n  dora: {}\n", `parse auth_config.yml: line 3: mapping key "dora" already defined at line 2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwin(t)
			got := both(t, tw, ACLImportOp, ACLImport{File: "-"}, tc.config)
			if got.out != "" || !strings.HasPrefix(got.err, tc.wantErr) || strings.Contains(got.err, "\n") {
				t.Errorf("import of\n%s\ngot\n%s\nwant one line starting %q, no output", tc.config, got, tc.wantErr)
			}
			if n, _ := tw.remote.UserCount(); n != 0 {
				t.Errorf("%d users imported from a refused file", n)
			}
		})
	}
}

func TestACLImport_UsersOnly(t *testing.T) {
	tw := newTwin(t)
	both(t, tw, ACLAddOp, ACLAdd{Account: str("keep"), Name: str("keep/*"), Actions: "pull"}, "")
	got := both(t, tw, ACLImportOp, ACLImport{File: "-"}, "users:\n  dora:\n    password: \""+hash2a+"\"\n  eve: {}\n")
	wantOut := "added user dora\nthe file has no acl: section: access rules left as they are\n"
	if got.out != wantOut || got.err != "imported 1, refused 1: eve (no password)" {
		t.Errorf("got\n%s", got)
	}
	if rules, _ := tw.remote.Rules(); len(rules) != 2 || rules[0].Account != "keep" {
		t.Errorf("rules after a users-only import: %+v", rules)
	}
}

func TestACLImport_RefusesHighBcryptCost(t *testing.T) {
	tw := newTwin(t)
	got := both(t, tw, ACLImportOp, ACLImport{File: "-"}, "users:\n  dora:\n    password: \""+hash2a+"\"\n  slow:\n    password: \"$2y$17$"+hash2y[7:]+"\"\n")
	wantErr := "imported 1, refused 1: slow (bcrypt cost 17, above berth's maximum of 14: re-hash with htpasswd -B -C 10 or set it with berth user passwd)"
	if got.out != "added user dora\nthe file has no acl: section: access rules left as they are\n" || got.err != wantErr {
		t.Errorf("got\n%s\nwant the error %q", got, wantErr)
	}
	if _, err := tw.remote.User("slow"); err == nil {
		t.Error("the user with a cost-17 hash was imported")
	}
}

// FuzzParseDockerAuth: parsing never panics, and whatever it accepts the
// server can use: every rule compiles, every user has a valid name and a
// bcrypt hash.
func FuzzParseDockerAuth(f *testing.F) {
	config, err := os.ReadFile("testdata/auth_config.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(config))
	f.Add("acl:\n  - match: {account: \"\", name: \"/x/\", type: \"*\"}\n    actions: [\"*\"]\n")
	f.Add("users: {a: {password: x}, \"\": null}\nacl: ~\n")
	f.Fuzz(func(t *testing.T, input string) {
		imp, err := parseDockerAuth([]byte(input))
		if err != nil {
			return
		}
		if _, err := auth.NewAuthorizer(imp.rules, false); err != nil {
			t.Fatalf("accepted rules that do not compile: %v", err)
		}
		if imp.hasACL != (len(imp.rules) > 0) {
			t.Fatalf("hasACL %v with %d rules", imp.hasACL, len(imp.rules))
		}
		for _, u := range imp.users {
			if store.ValidateUserName(u.Name) != nil || checkBcryptHash(u.Hash) != nil {
				t.Fatalf("accepted user %q with hash %q", u.Name, u.Hash)
			}
		}
	})
}

// TestACLImport_AnonymousKept: a docker_auth rule whose account pattern
// matched anonymous there gets a copy for account "" right after it, since
// berth's patterns never match anonymous.
func TestACLImport_AnonymousKept(t *testing.T) {
	tw := newTwin(t)
	config := "acl:\n  - match: {account: \"/.+/\", name: \"team/*\"}\n    actions: [pull, push]\n  - match: {account: \"*\", name: \"pub/*\"}\n    actions: [pull]\n"
	got := both(t, tw, ACLImportOp, ACLImport{File: "-"}, config)
	want := "replaced 0 access rules with the 2 of the file, and 1 copies with account \"\" for anonymous callers, whom docker_auth's patterns matched and berth's do not\n"
	if got.out != want || got.err != "" {
		t.Fatalf("got\n%s\nwant %q", got, want)
	}
	rules, _ := tw.remote.Rules()
	authz, err := auth.NewAuthorizer(rules, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := authz.Allowed("", false, "repository", "pub/x", []string{"pull"}); len(got) != 1 {
		t.Errorf("anonymous pull of pub/x after import = %q, want [pull] as in docker_auth", got)
	}
	if got := authz.Allowed("", false, "repository", "team/x", []string{"pull"}); len(got) != 0 {
		t.Errorf("anonymous pull of team/x after import = %q, want nothing (/.+/ never matched anonymous)", got)
	}
}
