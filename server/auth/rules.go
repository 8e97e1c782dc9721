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
// the access model (organizations, teams, grants, visibility), the ordered
// access rules and the anonymous-pull switch, all compiled once. It is
// immutable and safe for concurrent use.
//
// The decision, for a caller and a resource, one action at a time; the
// first step that grants the action names the reason (Explain):
//  1. Only actions berth knows are ever granted: pull, push, delete and * on
//     a repository; * on registry:catalog. Others are dropped.
//  2. Admins may do everything, whatever the rules say, so a rule list can
//     never lock out the people who maintain it.
//  3. Every signed-in user may do everything under "<account>/" (any
//     depth): the personal namespace.
//  4. Grants: a grant to the user, or to a team the user is in, of read
//     (pull), write (pull, push) or admin (pull, push, delete, *) on the
//     organization's repositories or on those matching its pattern.
//  5. Visibility: anyone, anonymous included, may pull a public repository
//     or a repository in a public namespace; the most specific record wins.
//  6. Rules: the first rule whose Account, Type and Name match decides
//     what rules grant: the requested actions it lists (all if it lists *).
//     With no rules, the default policy: every signed-in user may pull
//     everything.
//  7. Anonymous pull (serve --anonymous-pull) lets the anonymous caller pull.
//
// Nothing is ever taken away by a later step: grants, visibility and rules
// add up, and what none of them grants is denied.
//
// A rule's Account matches the anonymous caller only when it is "" (the
// anonymous account, written "" on the command line): no glob or regular
// expression matches anonymous, so "*" and "/.+/" mean every signed-in
// caller. Type "" means "repository". Patterns follow docker_auth: "/re/"
// is a regular expression matched unanchored (write ^ and $), a pattern with
// * ? [ or \ is a glob whose * and ? stop at '/' while ** crosses it
// ("apps/**" covers apps/app and apps/team/app), and anything else is exact.
// ${account} stands for the caller's account, quoted so the account's
// characters only ever match themselves.
//
// The catalog (registry:catalog:*) follows rules that match type
// "registry"; when none matches, it is granted to signed-in callers, and to
// anonymous with anonymous pull or when something is public, because the
// catalog handler lists only the repositories the caller may pull: access
// to it reveals nothing.
type Authorizer struct {
	rules         []compiledRule
	model         *model
	anonymousPull bool
}

type compiledRule struct {
	account, typ, name *pattern
	actions            []string
	all                bool // actions include *
}

// NewAuthorizer compiles rules, in order, with an empty access model. It
// returns an error wrapping ErrRuleInvalid naming the first rule that does
// not compile.
func NewAuthorizer(rules []store.Rule, anonymousPull bool) (*Authorizer, error) {
	return NewModelAuthorizer(store.Model{}, rules, anonymousPull)
}

// NewModelAuthorizer compiles the access model m and rules. It returns an
// error naming the first grant or rule that does not compile.
func NewModelAuthorizer(m store.Model, rules []store.Rule, anonymousPull bool) (*Authorizer, error) {
	cm, err := compileModel(m)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{anonymousPull: anonymousPull, model: cm}
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
	return a.AllowedTo(Principal{Name: account, Admin: isAdmin}, resourceType, name, requested)
}

// AllowedTo is Allowed for a Principal, whose Teams count as well.
func (a *Authorizer) AllowedTo(p Principal, resourceType, name string, requested []string) []string {
	typ, _, _ := strings.Cut(resourceType, "(")
	var granted []string
	for _, act := range knownActions(typ, name, requested) {
		if s := a.source(p, typ, name, act); s.kind != byNothing {
			granted = append(granted, act)
		}
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

// firstMatch returns the position of the first rule matching the caller
// and resource, or -1.
func (a *Authorizer) firstMatch(account, typ, name string) int {
	for i := range a.rules {
		r := &a.rules[i]
		if a.accountMatches(r, account) && r.typ.match(account, typ) && r.name.match(account, name) {
			return i
		}
	}
	return -1
}

// accountMatches reports whether r is for account: the anonymous caller
// ("") only matches the anonymous account "" itself, never a pattern.
func (a *Authorizer) accountMatches(r *compiledRule, account string) bool {
	if account == "" {
		return r.account.raw == ""
	}
	return r.account.match(account, account)
}

// grants reports whether r grants act.
func (r *compiledRule) grants(act string) bool {
	return r.all || contains(r.actions, act)
}
