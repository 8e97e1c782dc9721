package admin

import (
	"reflect"
	"testing"

	"github.com/berth-registry/berth/store"
)

func str(s string) *string { return &s }

func TestACLCommands_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	list := func() result { return both(t, tw, ACLListOp, ACLList{}, "") }
	add := func(r ACLAdd) func() result { return func() result { return both(t, tw, ACLAddOp, r, "") } }
	del := func(n string) func() result {
		return func() result { return both(t, tw, ACLDelOp, ACLDel{Number: n}, "") }
	}
	steps := []struct {
		name    string
		run     func() result
		wantOut string
		wantErr string
	}{
		{"list empty", list, "no access rules: the default policy applies (admins may do everything; signed-in users pull everything and push and delete under <account>/; anonymous nothing, unless serve --anonymous-pull)\n", ""},
		{"add namespace rule", add(ACLAdd{Account: str("/.+/"), Name: str("${account}/*"), Actions: "pull, push,delete,push", Comment: "own namespace"}), "added rule 1\nthe default policy is now rule 2 (every signed-in user may pull everything); `berth acl del 2` removes it\n", ""},
		{"add anonymous", add(ACLAdd{Account: str(""), Name: str("library/*"), Actions: "pull"}), "added rule 3\n", ""},
		{"add first", add(ACLAdd{Account: str("ci"), Actions: "*", At: str("1")}), "added rule 1\n", ""},
		{"add catalog", add(ACLAdd{Account: str("ci"), Name: str("catalog"), Type: "registry", Actions: "*", At: str("5")}), "added rule 5\n", ""},
		{"list", list, "" +
			"#  ACCOUNT  TYPE        NAME          ACTIONS           COMMENT\n" +
			"1  ci       repository  /.*/          *                 \n" +
			"2  /.+/     repository  ${account}/*  pull,push,delete  own namespace\n" +
			"3  /.+/     repository  **            pull              default policy: signed-in users pull everything\n" +
			"4  \"\"       repository  library/*     pull              \n" +
			"5  ci       registry    catalog       *                 \n", ""},
		{"at past the end", add(ACLAdd{Account: str("x"), Name: str("x"), Actions: "pull", At: str("7")}), "", "--at 7: want a position from 1 to 6"},
		{"at zero", add(ACLAdd{Account: str("x"), Name: str("x"), Actions: "pull", At: str("0")}), "", "--at 0: want a position from 1 to 6"},
		{"no actions", add(ACLAdd{Account: str("x"), Name: str("x")}), "", "--actions is required: pull, push, delete or *, comma-separated"},
		{"unknown action", add(ACLAdd{Account: str("x"), Name: str("x"), Actions: "pull,write"}), "", `invalid access rule: unknown action "write" (want pull, push, delete or *)`},
		{"empty actions", add(ACLAdd{Account: str("x"), Name: str("x"), Actions: " , "}), "", "invalid access rule: no actions"},
		{"bad regex", add(ACLAdd{Account: str("/(/"), Name: str("x"), Actions: "pull"}), "", "invalid access rule: account: pattern \"/(/\": error parsing regexp: missing closing ): `(`"},
		{"bad glob", add(ACLAdd{Account: str("x"), Name: str("a["), Actions: "pull"}), "", "invalid access rule: name: pattern \"a[\": syntax error in pattern"},
		{"other placeholder", add(ACLAdd{Account: str("x"), Name: str("${labels:team}/*"), Actions: "pull"}), "", `name "${labels:team}/*" uses ${labels:team}: berth substitutes only ${account}`},
		{"del", del("4"), "deleted rule 4 (account \"\", name library/*, actions pull)\n", ""},
		{"del past the end", del("5"), "", "no rule 5: there are 4 (see berth acl list)"},
		{"del zero", del("0"), "", "no rule 0: there are 4 (see berth acl list)"},
		{"del word", del("first"), "", "no rule first: there are 4 (see berth acl list)"},
	}
	for _, st := range steps {
		got := st.run()
		if got.out != st.wantOut || got.err != st.wantErr {
			t.Errorf("%s: got\n%s\nwant stdout %q\nerror %q", st.name, got, st.wantOut, st.wantErr)
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
		defaultPullRule,
		{Account: "ci", Name: "catalog", Type: "registry", Actions: []string{"*"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("server's rules:\n got %+v\nwant %+v", rules, want)
	}
}
