package auth

import (
	"fmt"
	"strings"
)

// sourceKind is the step of the decision (see Authorizer) that granted an
// action.
type sourceKind int

const (
	byNothing sourceKind = iota
	byAdmin
	byNamespace
	byGrant
	byVisibility
	byRule
	byDefault
	byAnonymousPull
)

// source is what granted an action: a step, and the grant, rule or
// visibility record of that step. It holds no strings built per request;
// Explain describes it.
type source struct {
	kind       sourceKind
	grant      *compiledGrant
	rule       int    // byRule; for byNothing, the rule that matched without granting, or -1
	visibility string // byVisibility: the public repository or namespace
}

// source runs the decision for one known action.
func (a *Authorizer) source(p Principal, typ, name, act string) source {
	if p.Admin {
		return source{kind: byAdmin}
	}
	if typ == TypeRegistry {
		return a.catalogSource(p, name, act)
	}
	signedIn := p.Name != ""
	if signedIn && strings.HasPrefix(name, p.Name+"/") {
		return source{kind: byNamespace}
	}
	if g := a.model.grantFor(p, name, act); g != nil {
		return source{kind: byGrant, grant: g}
	}
	if act == ActionPull {
		if v := a.model.publicName(name); v != "" {
			return source{kind: byVisibility, visibility: v}
		}
	}
	matched := -1
	if len(a.rules) > 0 {
		if i := a.firstMatch(p.Name, typ, name); i >= 0 {
			if a.rules[i].grants(act) {
				return source{kind: byRule, rule: i}
			}
			matched = i
		}
	} else if signedIn && act == ActionPull {
		return source{kind: byDefault}
	}
	if !signedIn && a.anonymousPull && act == ActionPull {
		return source{kind: byAnonymousPull}
	}
	return source{kind: byNothing, rule: matched}
}

func (a *Authorizer) catalogSource(p Principal, name, act string) source {
	if i := a.firstMatch(p.Name, TypeRegistry, name); i >= 0 {
		if a.rules[i].grants(act) {
			return source{kind: byRule, rule: i}
		}
		return source{kind: byNothing, rule: i}
	}
	if p.Name != "" || a.anonymousPull || a.model.anyPublic() {
		return source{kind: byDefault}
	}
	return source{kind: byNothing, rule: -1}
}

// Decision is the answer to one access question with its reason.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// Explain answers whether p may take act on the resource (typ, name) and
// says which step, grant or rule decided; for a refusal, which rule matched
// without granting the action, if any. An action berth does not know is
// refused as such.
func (a *Authorizer) Explain(p Principal, typ, name, act string) Decision {
	if len(knownActions(typ, name, []string{act})) == 0 {
		return Decision{Reason: fmt.Sprintf("berth grants no %q on %s %s", act, typ, name)}
	}
	s := a.source(p, typ, name, act)
	return Decision{Allowed: s.kind != byNothing, Reason: a.describe(p, s)}
}

func (a *Authorizer) describe(p Principal, s source) string {
	who := p.Name
	if who == "" {
		who = "anonymous"
	}
	switch s.kind {
	case byAdmin:
		return who + " is an admin"
	case byNamespace:
		return "personal namespace " + p.Name + "/"
	case byGrant:
		return "grant: " + s.grant.Grant.String()
	case byVisibility:
		return s.visibility + " is public"
	case byRule:
		return "rule " + a.describeRule(s.rule)
	case byDefault:
		if p.Name == "" {
			return "default: the catalog lists only what anonymous may pull"
		}
		return "default policy: no access rules, so every signed-in user may pull"
	case byAnonymousPull:
		return "serve --anonymous-pull"
	}
	if s.rule >= 0 {
		return "rule " + a.describeRule(s.rule) + " matched first and does not grant it; no grant or visibility does"
	}
	if len(a.rules) == 0 {
		return "no grant or visibility grants it, and the default policy does not"
	}
	return "no grant, visibility or rule grants it"
}

func (a *Authorizer) describeRule(i int) string {
	r := &a.rules[i]
	account := r.account.raw
	if account == "" {
		account = `""`
	}
	return fmt.Sprintf("%d (account %s, name %s, actions %s)", i+1, account, r.name.raw, strings.Join(r.actions, ","))
}

// Explain says whether account ("" for anonymous) may take act on the
// resource (typ, name) under the model and rules now, and why: what a
// refused request's log line and error carry. Teams from LDAP groups are
// not known here (they live in the caller's token), so a refusal of an LDAP
// user names the local grants and rules only.
func (s *Service) Explain(account, typ, name, act string) (Decision, error) {
	p := Principal{Name: account}
	if account != "" {
		u, err := s.users.user(s.store, account)
		if err == nil {
			p.Admin = u.Admin
		}
	}
	authz, err := s.Authorizer()
	if err != nil {
		return Decision{}, err
	}
	return authz.Explain(p, typ, name, act), nil
}
