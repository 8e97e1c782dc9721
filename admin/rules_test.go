package admin

import (
	"reflect"
	"testing"

	"github.com/berth-registry/berth/store"
)

func flags(kv ...string) map[string]string {
	m := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestACLCommands_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	steps := []struct {
		name    string
		command string
		args    Args
		wantOut string
		wantErr string
	}{
		{"list empty", "acl list", Args{}, "no access rules: the default policy applies (admins may do everything; signed-in users pull everything and push and delete under <account>/; anonymous nothing, unless serve --anonymous-pull)\n", ""},
		{"add namespace rule", "acl add", Args{Flags: flags("account", "/.+/", "name", "${account}/*", "actions", "pull, push,delete,push", "comment", "own namespace")}, "added rule 1\n", ""},
		{"add anonymous", "acl add", Args{Flags: flags("account", "", "name", "library/*", "actions", "pull")}, "added rule 2\n", ""},
		{"add first", "acl add", Args{Flags: flags("account", "ci", "actions", "*", "at", "1")}, "added rule 1\n", ""},
		{"add catalog", "acl add", Args{Flags: flags("account", "ci", "name", "catalog", "type", "registry", "actions", "*", "at", "4")}, "added rule 4\n", ""},
		{"list", "acl list", Args{}, "" +
			"#  ACCOUNT  TYPE        NAME          ACTIONS           COMMENT\n" +
			"1  ci       repository  /.*/          *                 \n" +
			"2  /.+/     repository  ${account}/*  pull,push,delete  own namespace\n" +
			"3  \"\"       repository  library/*     pull              \n" +
			"4  ci       registry    catalog       *                 \n", ""},
		{"at past the end", "acl add", Args{Flags: flags("account", "x", "name", "x", "actions", "pull", "at", "6")}, "", "--at 6: want a position from 1 to 5"},
		{"at zero", "acl add", Args{Flags: flags("account", "x", "name", "x", "actions", "pull", "at", "0")}, "", "--at 0: want a position from 1 to 5"},
		{"no actions", "acl add", Args{Flags: flags("account", "x", "name", "x")}, "", "--actions is required: pull, push, delete or *, comma-separated"},
		{"unknown action", "acl add", Args{Flags: flags("account", "x", "name", "x", "actions", "pull,write")}, "", `invalid access rule: unknown action "write" (want pull, push, delete or *)`},
		{"empty actions", "acl add", Args{Flags: flags("account", "x", "name", "x", "actions", " , ")}, "", "invalid access rule: no actions"},
		{"bad regex", "acl add", Args{Flags: flags("account", "/(/", "name", "x", "actions", "pull")}, "", "invalid access rule: account: pattern \"/(/\": error parsing regexp: missing closing ): `(`"},
		{"bad glob", "acl add", Args{Flags: flags("account", "x", "name", "a[", "actions", "pull")}, "", "invalid access rule: name: pattern \"a[\": syntax error in pattern"},
		{"other placeholder", "acl add", Args{Flags: flags("account", "x", "name", "${labels:team}/*", "actions", "pull")}, "", `name "${labels:team}/*" uses ${labels:team}: berth substitutes only ${account}`},
		{"positional argument", "acl add", Args{Words: []string{"x"}, Flags: flags("actions", "pull")}, "", "usage: berth acl add [--account A] [--name N] [--type T] --actions pull,push,delete|* [--comment C] [--at I]"},
		{"del", "acl del", Args{Words: []string{"3"}}, "deleted rule 3 (account \"\", name library/*, actions pull)\n", ""},
		{"del past the end", "acl del", Args{Words: []string{"4"}}, "", "no rule 4: there are 3 (see berth acl list)"},
		{"del zero", "acl del", Args{Words: []string{"0"}}, "", "no rule 0: there are 3 (see berth acl list)"},
		{"del word", "acl del", Args{Words: []string{"first"}}, "", "no rule first: there are 3 (see berth acl list)"},
		{"del nothing", "acl del", Args{}, "", "usage: berth acl del I"},
	}
	for _, st := range steps {
		got := tw.run(t, st.command, st.args, "")
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: %s %q %q: got\n%s\nwant stdout %q\nerror %q", st.name, st.command, st.args.Words, st.args.Flags, got, st.wantOut, st.wantErr)
		}
	}

	// The serving process holds the rules at once, in the listed order.
	rules, err := tw.remote.Rules()
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Rule{
		{Account: "ci", Name: matchAny, Actions: []string{"*"}},
		{Account: "/.+/", Name: "${account}/*", Actions: []string{"pull", "push", "delete"}, Comment: "own namespace"},
		{Account: "ci", Name: "catalog", Type: "registry", Actions: []string{"*"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("server's rules:\n got %+v\nwant %+v", rules, want)
	}
}
