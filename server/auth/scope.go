package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Resource types, names and actions of the Docker token specification that
// berth grants. Other resource types parse, but are granted nothing.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
	// CatalogName is the only resource name of TypeRegistry: the scope
	// "registry:catalog:*" lets a client call /v2/_catalog.
	CatalogName = "catalog"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"
)

// ErrScopeInvalid is returned for a scope that does not follow the grammar of
// the token specification.
var ErrScopeInvalid = errors.New("invalid scope")

// maxScopeLength bounds one scope in bytes; the name part of a valid scope
// is a repository name, which registries keep far shorter.
const maxScopeLength = 1024

// Scope is one resource scope of a token request, such as
// "repository:alice/app:pull,push", as defined in the distribution project's
// "Token Scope Documentation":
//
//	resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
//	resourcetype  := resourcetypevalue [ '(' resourcetypevalue ')' ]
//	resourcename  := [ hostname '/' ] component [ '/' component ]*
//	action        := /[a-z*]*/
//
// The name may hold one ':' (the port of a hostname), so the type ends at the
// first ':' and the actions start after the last.
type Scope struct {
	Type string // "repository", "registry", or any other [a-z0-9]+ value
	// Class is the deprecated resource class, "plugin" in
	// "repository(plugin)". It is kept so String round-trips, and ignored
	// when authorizing: the spec makes both forms equal.
	Class   string
	Name    string
	Actions []string // as requested, in order, possibly with duplicates or ""
}

// ParseScope parses one resource scope. It returns an error wrapping
// ErrScopeInvalid when s does not follow the grammar or is longer than 1024
// bytes. For every scope it accepts, String returns s.
func ParseScope(s string) (Scope, error) {
	invalid := fmt.Errorf("%w: %q", ErrScopeInvalid, s)
	if len(s) > maxScopeLength {
		return Scope{}, fmt.Errorf("%w: longer than %d bytes", ErrScopeInvalid, maxScopeLength)
	}
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 {
		return Scope{}, invalid
	}
	name, actions := rest[:i], rest[i+1:]

	sc := Scope{Type: typ, Name: name}
	if base, class, hasClass := strings.Cut(typ, "("); hasClass {
		class, closed := strings.CutSuffix(class, ")")
		if !closed || !isTypeValue(class) {
			return Scope{}, invalid
		}
		sc.Type, sc.Class = base, class
	}
	if !isTypeValue(sc.Type) || !validResourceName(name) {
		return Scope{}, invalid
	}
	sc.Actions = strings.Split(actions, ",")
	for _, a := range sc.Actions {
		if !isAction(a) {
			return Scope{}, invalid
		}
	}
	return sc, nil
}

// ParseScopes parses the scope parameters of a token request: several
// "scope" parameters (GET), each possibly holding several scopes separated by
// spaces (the single "scope" field of POST). Empty parameters add nothing.
// It stops at the first invalid scope and returns its error.
func ParseScopes(params []string) ([]Scope, error) {
	var out []Scope
	for _, p := range params {
		for _, s := range strings.Fields(p) {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	return out, nil
}

// String formats sc in the grammar ParseScope reads.
func (sc Scope) String() string {
	typ := sc.Type
	if sc.Class != "" {
		typ += "(" + sc.Class + ")"
	}
	return typ + ":" + sc.Name + ":" + strings.Join(sc.Actions, ",")
}

// isTypeValue reports whether s matches /[a-z0-9]+/.
func isTypeValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerAlnum(s[i]) {
			return false
		}
	}
	return true
}

// isAction reports whether s matches /[a-z*]*/; the empty action is valid.
func isAction(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '*') {
			return false
		}
	}
	return true
}

// validResourceName reports whether name matches
// [ hostname '/' ] component [ '/' component ]*.
func validResourceName(name string) bool {
	parts := strings.Split(name, "/")
	if !isComponent(parts[0]) && (len(parts) < 2 || !isHostname(parts[0])) {
		return false
	}
	for _, p := range parts[1:] {
		if !isComponent(p) {
			return false
		}
	}
	return true
}

// isComponent reports whether s matches
// [a-z0-9]+ ( ( [_.] | __ | [-]* ) [a-z0-9]+ )*.
func isComponent(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); {
		if isLowerAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isLowerAlnum(s[j]) {
			j++
		}
		if !isSeparator(s[i:j]) {
			return false
		}
		i = j
	}
	return true
}

func isSeparator(s string) bool {
	if s == "." || s == "_" || s == "__" {
		return true
	}
	return strings.Trim(s, "-") == ""
}

// isHostname reports whether s matches
// hostcomponent [ '.' hostcomponent ]* [ ':' port-number ], with
// hostcomponent /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/ and
// port-number /[0-9]+/.
func isHostname(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return false
	}
	for _, c := range strings.Split(host, ".") {
		if !isHostComponent(c) {
			return false
		}
	}
	return true
}

func isHostComponent(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}
