package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-registry/berth/store"
)

// ErrRuleInvalid is returned for an access rule that cannot be compiled.
var ErrRuleInvalid = errors.New("invalid access rule")

// Authorizer decides which actions a caller may take on a resource, from
// the ordered access rules (compiled once) and the anonymous-pull switch.
// It is immutable and safe for concurrent use.
//
// The decision, for a caller and a resource:
//  1. Only actions berth knows are ever granted: pull, push, delete and * on
//     a repository; * on registry:catalog. Others are dropped.
//  2. Admins may do everything, whatever the rules say, so a rule list can
//     never lock out the people who maintain it.
//  3. With no rules, the default policy README.md documents: every signed-in
//     user may pull everything and push and delete under "<account>/" (at
//     any depth); anonymous may do nothing, or pull with anonymous pull on.
//  4. With rules, the first rule whose Account, Type and Name match decides:
//     the granted actions are the requested ones the rule lists (all of
//     them if it lists *). No matching rule denies. Anonymous pull, when on,
//     adds pull for the anonymous caller on top of the rules.
//
// A rule's Account "" matches only the anonymous caller, but, as in
// docker_auth, so do the patterns "*" and "/.*/": write "/.+/" for every
// signed-in caller. Type "" means "repository". Patterns follow docker_auth:
// "/re/" is a regular expression matched unanchored (write ^ and $), a
// pattern with * ? [ or \ is a path.Match glob whose * stops at '/', and
// anything else is exact. ${account} stands for the caller's account,
// quoted so the account's characters only ever match themselves.
//
// The catalog (registry:catalog:*) follows rules that match type
// "registry"; when none matches, it is granted to signed-in callers, and to
// anonymous with anonymous pull, because the catalog handler lists only the
// repositories the caller may pull: access to it reveals nothing.
type Authorizer struct {
	rules         []compiledRule
	anonymousPull bool
}

type compiledRule struct {
	account, typ, name *pattern
	actions            []string
	all                bool // actions include *
}

// NewAuthorizer compiles rules, in order. It returns an error wrapping
// ErrRuleInvalid naming the first rule that does not compile.
func NewAuthorizer(rules []store.Rule, anonymousPull bool) (*Authorizer, error) {
	a := &Authorizer{anonymousPull: anonymousPull}
	for i, r := range rules {
		cr, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		a.rules = append(a.rules, cr)
	}
	return a, nil
}

// ValidateRule reports whether r compiles: its patterns are valid globs or
// regular expressions, its Name is not empty, and its Actions are a
// non-empty list of pull, push, delete and *. Errors wrap ErrRuleInvalid.
func ValidateRule(r store.Rule) error {
	_, err := compileRule(r)
	return err
}

func compileRule(r store.Rule) (compiledRule, error) {
	if r.Name == "" {
		return compiledRule{}, fmt.Errorf("%w: empty name pattern", ErrRuleInvalid)
	}
	if len(r.Actions) == 0 {
		return compiledRule{}, fmt.Errorf("%w: no actions", ErrRuleInvalid)
	}
	var cr compiledRule
	for _, a := range r.Actions {
		switch a {
		case ActionAll:
			cr.all = true
		case ActionPull, ActionPush, ActionDelete:
		default:
			return compiledRule{}, fmt.Errorf("%w: unknown action %q (want pull, push, delete or *)", ErrRuleInvalid, a)
		}
	}
	cr.actions = slices.Clone(r.Actions)
	typ := r.Type
	if typ == "" {
		typ = TypeRepository
	}
	var err error
	if cr.account, err = compilePattern(r.Account); err != nil {
		return compiledRule{}, fmt.Errorf("%w: account: %w", ErrRuleInvalid, err)
	}
	if cr.typ, err = compilePattern(typ); err != nil {
		return compiledRule{}, fmt.Errorf("%w: type: %w", ErrRuleInvalid, err)
	}
	if cr.name, err = compilePattern(r.Name); err != nil {
		return compiledRule{}, fmt.Errorf("%w: name: %w", ErrRuleInvalid, err)
	}
	return cr, nil
}

// Allowed returns the subset of requested that account may take on the
// resource (resourceType, name); account "" is anonymous and isAdmin says
// whether the account is an admin. resourceType may carry the deprecated
// class ("repository(plugin)"), which is ignored. The result keeps the
// requested order without duplicates; nil means nothing is allowed.
func (a *Authorizer) Allowed(account string, isAdmin bool, resourceType, name string, requested []string) []string {
	typ, _, _ := strings.Cut(resourceType, "(")
	wanted := knownActions(typ, name, requested)
	switch {
	case len(wanted) == 0:
		return nil
	case isAdmin:
		return wanted
	case len(a.rules) == 0:
		return a.defaults(account, typ, name, wanted)
	}
	var granted []string
	if r := a.firstMatch(account, typ, name); r != nil {
		granted = r.grant(wanted)
	} else if typ == TypeRegistry {
		granted = a.defaults(account, typ, name, wanted)
	}
	if account == "" && a.anonymousPull && typ == TypeRepository &&
		slices.Contains(wanted, ActionPull) && !slices.Contains(granted, ActionPull) {
		granted = append(granted, ActionPull)
	}
	return granted
}

// knownActions drops the actions berth does not grant on the resource, and
// duplicates.
func knownActions(typ, name string, requested []string) []string {
	var out []string
	for _, act := range requested {
		known := false
		switch typ {
		case TypeRepository:
			known = act == ActionPull || act == ActionPush || act == ActionDelete || act == ActionAll
		case TypeRegistry:
			known = name == CatalogName && act == ActionAll
		}
		if known && !slices.Contains(out, act) {
			out = append(out, act)
		}
	}
	return out
}

// defaults applies the policy that holds when no rule is configured.
func (a *Authorizer) defaults(account, typ, name string, wanted []string) []string {
	signedIn := account != ""
	if typ == TypeRegistry {
		if signedIn || a.anonymousPull {
			return wanted
		}
		return nil
	}
	if signedIn && strings.HasPrefix(name, account+"/") {
		return wanted
	}
	if signedIn || a.anonymousPull {
		return intersect(wanted, []string{ActionPull})
	}
	return nil
}

func (a *Authorizer) firstMatch(account, typ, name string) *compiledRule {
	for i := range a.rules {
		r := &a.rules[i]
		if r.account.match(account, account) && r.typ.match(account, typ) && r.name.match(account, name) {
			return r
		}
	}
	return nil
}

func (r *compiledRule) grant(wanted []string) []string {
	if r.all {
		return wanted
	}
	return intersect(wanted, r.actions)
}

// intersect returns the elements of wanted that are in allowed, in the order
// of wanted.
func intersect(wanted, allowed []string) []string {
	var out []string
	for _, w := range wanted {
		if slices.Contains(allowed, w) {
			out = append(out, w)
		}
	}
	return out
}
