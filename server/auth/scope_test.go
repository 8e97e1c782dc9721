package auth

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Scope
	}{
		{"pull", "repository:alice/app:pull", Scope{Type: "repository", Name: "alice/app", Actions: []string{"pull"}}},
		{"pull and push", "repository:samalba/my-app:pull,push", Scope{Type: "repository", Name: "samalba/my-app", Actions: []string{"pull", "push"}}},
		{"catalog", "registry:catalog:*", Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{"plugin class", "repository(plugin):vieux/sshfs:pull", Scope{Type: "repository", Class: "plugin", Name: "vieux/sshfs", Actions: []string{"pull"}}},
		{"hostname with port", "repository:localhost:5000/app:pull", Scope{Type: "repository", Name: "localhost:5000/app", Actions: []string{"pull"}}},
		{"hostname with dots", "repository:Registry.Example.com/team/app:pull", Scope{Type: "repository", Name: "Registry.Example.com/team/app", Actions: []string{"pull"}}},
		{"separators", "repository:a.b_c__d---e/f:delete", Scope{Type: "repository", Name: "a.b_c__d---e/f", Actions: []string{"delete"}}},
		{"unknown type parses", "frobnicator:thing:zap", Scope{Type: "frobnicator", Name: "thing", Actions: []string{"zap"}}},
		{"empty action list", "repository:app:", Scope{Type: "repository", Name: "app", Actions: []string{""}}},
		{"empty actions between commas", "repository:app:pull,,push", Scope{Type: "repository", Name: "app", Actions: []string{"pull", "", "push"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScope(tc.input)
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tc.input, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseScope(%q) = %#v, want %#v", tc.input, got, tc.want)
			}
			if s := got.String(); s != tc.input {
				t.Fatalf("ParseScope(%q).String() = %q", tc.input, s)
			}
		})
	}
}

func TestParseScopeRejects(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"empty", ""},
		{"no colon", "repository"},
		{"one colon", "repository:app"},
		{"empty type", ":app:pull"},
		{"upper-case type", "Repository:app:pull"},
		{"empty name", "repository::pull"},
		{"upper-case component", "repository:alice/App:pull"},
		{"upper-case single component", "repository:Alice:pull"},
		{"leading slash", "repository:/app:pull"},
		{"trailing slash", "repository:app/:pull"},
		{"double slash", "repository:a//b:pull"},
		{"bad separator", "repository:a._b:pull"},
		{"three underscores", "repository:a___b:pull"},
		{"hostname alone", "repository:localhost:5000:pull"},
		{"empty port", "repository:localhost:/app:pull"},
		{"two ports", "repository:host:1:2/app:pull"},
		{"port not numeric", "repository:host:http/app:pull"},
		{"hostname dash edge", "repository:-host.com/app:pull"},
		{"upper-case action", "repository:app:PULL"},
		{"space in action", "repository:app:pull push"},
		{"unclosed class", "repository(plugin:app:pull"},
		{"empty class", "repository():app:pull"},
		{"text after class", "repository(plugin)x:app:pull"},
		{"too long", "repository:" + strings.Repeat("a", maxScopeLength) + ":pull"},
		{"nul", "repository:a\x00b:pull"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScope(tc.input)
			if !errors.Is(err, ErrScopeInvalid) {
				t.Fatalf("ParseScope(%q) = %#v, %v; want ErrScopeInvalid", tc.input, got, err)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name   string
		params []string
		want   []string
		err    bool
	}{
		{"none", nil, nil, false},
		{"empty param", []string{""}, nil, false},
		{"several GET params", []string{"repository:a:pull", "repository:b:push"}, []string{"repository:a:pull", "repository:b:push"}, false},
		{"POST space separated", []string{"repository:a:pull registry:catalog:*"}, []string{"repository:a:pull", "registry:catalog:*"}, false},
		{"one bad among good", []string{"repository:a:pull", "nonsense"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScopes(tc.params)
			if (err != nil) != tc.err {
				t.Fatalf("ParseScopes(%q) error = %v, want error %v", tc.params, err, tc.err)
			}
			var strs []string
			for _, sc := range got {
				strs = append(strs, sc.String())
			}
			if !reflect.DeepEqual(strs, tc.want) {
				t.Fatalf("ParseScopes(%q) = %q, want %q", tc.params, strs, tc.want)
			}
		})
	}
}

// scopeGrammar is the resource scope grammar of the token specification,
// written out as one regular expression independently of the parser.
var scopeGrammar = func() *regexp.Regexp {
	const (
		typeValue     = `[a-z0-9]+`
		hostComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		hostname      = hostComponent + `(?:\.` + hostComponent + `)*(?::[0-9]+)?`
		component     = `[a-z0-9]+(?:(?:[_.]|__|[-]*)[a-z0-9]+)*`
		name          = `(?:` + hostname + `/)?` + component + `(?:/` + component + `)*`
		action        = `[a-z*]*`
	)
	return regexp.MustCompile(`^` + typeValue + `(?:\(` + typeValue + `\))?:` + name + `:` + action + `(?:,` + action + `)*$`)
}()

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"repository:alice/app:pull,push",
		"registry:catalog:*",
		"repository(plugin):vieux/sshfs:pull",
		"repository:localhost:5000/app:pull",
		"repository:a.b_c__d---e/f:",
		"repository:a:b:c:pull",
		"repository:app:pull,,*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		grammatical := len(s) <= maxScopeLength && scopeGrammar.MatchString(s)
		if (err == nil) != grammatical {
			t.Fatalf("ParseScope(%q) error = %v, but grammar match = %v", s, err, grammatical)
		}
		if err != nil {
			if !errors.Is(err, ErrScopeInvalid) {
				t.Fatalf("ParseScope(%q) error %v does not wrap ErrScopeInvalid", s, err)
			}
			return
		}
		if got := sc.String(); got != s {
			t.Fatalf("ParseScope(%q).String() = %q", s, got)
		}
		again, err := ParseScope(sc.String())
		if err != nil || !reflect.DeepEqual(again, sc) {
			t.Fatalf("reparse of %q = %#v, %v; want %#v", s, again, err, sc)
		}
	})
}
