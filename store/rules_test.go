package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// ruleNames lists the Name of each rule, joined with commas, to compare
// orders at a glance.
func ruleNames(t *testing.T, s *Store) string {
	t.Helper()
	rs, err := s.Rules()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return strings.Join(names, ",")
}

func TestStore_InsertRule(t *testing.T) {
	tests := []struct {
		name string
		at   int
		want string
	}{
		{"append with -1", -1, "a,b,c,new"},
		{"append at len", 3, "a,b,c,new"},
		{"append past len", 42, "a,b,c,new"},
		{"first", 0, "new,a,b,c"},
		{"middle", 1, "a,new,b,c"},
		{"before last", 2, "a,b,new,c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			for _, n := range []string{"a", "b", "c"} {
				if err := s.InsertRule(Rule{Name: n, Actions: []string{"pull"}}, -1); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.InsertRule(Rule{Name: "new", Actions: []string{"pull"}}, tc.at); err != nil {
				t.Fatal(err)
			}
			if got := ruleNames(t, s); got != tc.want {
				t.Fatalf("InsertRule at %d: rules %s, want %s", tc.at, got, tc.want)
			}
		})
	}
}

func TestStore_DeleteRule(t *testing.T) {
	tests := []struct {
		name string
		at   int
		want string
		err  error
	}{
		{"first", 0, "b,c", nil},
		{"middle", 1, "a,c", nil},
		{"last", 2, "a,b", nil},
		{"ErrRuleUnknown past end", 3, "a,b,c", ErrRuleUnknown},
		{"ErrRuleUnknown negative", -1, "a,b,c", ErrRuleUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			if err := s.ReplaceRules([]Rule{{Name: "a"}, {Name: "b"}, {Name: "c"}}); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRule(tc.at); !errors.Is(err, tc.err) {
				t.Fatalf("DeleteRule(%d) = %v, want %v", tc.at, err, tc.err)
			}
			if got := ruleNames(t, s); got != tc.want {
				t.Fatalf("DeleteRule(%d): rules %s, want %s", tc.at, got, tc.want)
			}
		})
	}
}

func TestStore_RulesRoundTrip(t *testing.T) {
	s := mustOpen(t)
	if rs, err := s.Rules(); err != nil || len(rs) != 0 {
		t.Fatalf("Rules of new store = %v, %v", rs, err)
	}

	want := []Rule{
		{Account: "admin", Name: "/.*/", Actions: []string{"*"}, Comment: "admins"},
		{Account: "", Name: "public/*", Type: "repository", Actions: []string{"pull"}},
		{Account: "/.+/", Name: "${account}/*", Actions: []string{"pull", "push", "delete"}},
	}
	if err := s.ReplaceRules(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Rules() = %+v, want %+v", got, want)
	}

	if err := s.InsertRule(Rule{Name: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRule(0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRule(99); err == nil {
		t.Fatal("DeleteRule(99) succeeded")
	}

	// Positions stay dense: the keys are exactly 0..n-1.
	if err := s.ReplaceRules(nil); err != nil {
		t.Fatal(err)
	}
	if got := ruleNames(t, s); got != "" {
		t.Fatalf("after ReplaceRules(nil): %q", got)
	}
}
