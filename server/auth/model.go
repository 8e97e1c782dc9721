package auth

import (
	"fmt"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Principal is who asks: an account ("" for anonymous), whether it is an
// admin, and the teams ("org/team") it belongs to beyond those the store
// lists, which is how LDAP groups mapped to teams count while the user is
// signed in through LDAP.
type Principal struct {
	Name  string
	Admin bool
	Teams []string
}

// model is the compiled access model of store.Model: grants indexed by
// organization, team membership by user, and the visibility records.
type model struct {
	grants  map[string][]compiledGrant     // by organization
	teamsOf map[string]map[string]struct{} // user → "org/team"
	public  map[string]bool                // repository or namespace → public
	groups  map[string][]string            // LDAP group DN (lower case) → "org/team"
	orgs    map[string]bool
}

type compiledGrant struct {
	store.Grant
	repos   *pattern // nil: every repository of the organization
	actions []string
}

// levelActions are the repository actions each level grants; admin also
// grants * (everything on the repository).
var levelActions = map[string][]string{
	store.LevelRead:  {ActionPull},
	store.LevelWrite: {ActionPull, ActionPush},
	store.LevelAdmin: {ActionPull, ActionPush, ActionDelete, ActionAll},
}

// ValidateGrant reports whether g's repositories pattern compiles. Errors
// wrap ErrRuleInvalid.
func ValidateGrant(g store.Grant) error {
	if g.Repos == "" {
		return nil
	}
	if strings.Contains(g.Repos, accountPlaceholder) {
		return fmt.Errorf("%w: a grant's repositories cannot use %s", ErrRuleInvalid, accountPlaceholder)
	}
	if _, err := compilePattern(g.Repos); err != nil {
		return fmt.Errorf("%w: repositories: %w", ErrRuleInvalid, err)
	}
	return nil
}

func compileModel(m store.Model) (*model, error) {
	cm := &model{
		grants:  make(map[string][]compiledGrant),
		teamsOf: make(map[string]map[string]struct{}),
		public:  make(map[string]bool),
		groups:  make(map[string][]string),
		orgs:    make(map[string]bool),
	}
	for _, o := range m.Orgs {
		cm.orgs[o.Name] = true
	}
	for _, g := range m.Grants {
		cg := compiledGrant{Grant: g, actions: levelActions[g.Level]}
		if cg.actions == nil {
			return nil, fmt.Errorf("grant %s: unknown level %q", g.String(), g.Level)
		}
		if g.Repos != "" {
			p, err := compilePattern(g.Repos)
			if err != nil {
				return nil, fmt.Errorf("grant %s: %w", g.String(), err)
			}
			cg.repos = p
		}
		cm.grants[g.Org] = append(cm.grants[g.Org], cg)
	}
	for _, t := range m.Teams {
		id := t.Org + "/" + t.Name
		for _, u := range t.Members {
			if cm.teamsOf[u] == nil {
				cm.teamsOf[u] = make(map[string]struct{})
			}
			cm.teamsOf[u][id] = struct{}{}
		}
		if t.LDAPGroup != "" {
			g := strings.ToLower(t.LDAPGroup)
			cm.groups[g] = append(cm.groups[g], id)
		}
	}
	for _, v := range m.Visibility {
		cm.public[v.Name] = v.Public
	}
	return cm, nil
}

// grantFor returns the first grant that gives p act on repo, or nil.
func (m *model) grantFor(p Principal, repo, act string) *compiledGrant {
	org, _, ok := strings.Cut(repo, "/")
	if !ok || p.Name == "" {
		return nil
	}
	list := m.grants[org]
	for i := range list {
		g := &list[i]
		if !m.holds(p, g) || !covers(g.actions, act) {
			continue
		}
		if g.repos == nil {
			if strings.HasPrefix(repo, org+"/") {
				return g
			}
			continue
		}
		if g.repos.match("", repo) {
			return g
		}
	}
	return nil
}

// holds reports whether g is made to p, directly or through a team.
func (m *model) holds(p Principal, g *compiledGrant) bool {
	if g.User != "" {
		return g.User == p.Name
	}
	id := g.Org + "/" + g.Team
	if _, ok := m.teamsOf[p.Name][id]; ok {
		return true
	}
	for _, t := range p.Teams {
		if t == id {
			return true
		}
	}
	return false
}

// publicName returns the repository or namespace whose record makes repo
// public, or "" when repo is private: the most specific record wins.
func (m *model) publicName(repo string) string {
	if len(m.public) == 0 {
		return ""
	}
	for name := repo; name != ""; {
		if pub, ok := m.public[name]; ok {
			if pub {
				return name
			}
			return ""
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			break
		}
		name = name[:i]
	}
	return ""
}

// anyPublic reports whether some repository or namespace is public.
func (m *model) anyPublic() bool {
	for _, pub := range m.public {
		if pub {
			return true
		}
	}
	return false
}

// TeamsOfGroups returns the teams ("org/team") mapped to any of the LDAP
// group DNs (compared without regard to case), without repeats.
func (a *Authorizer) TeamsOfGroups(dns []string) []string {
	var out []string
	for _, dn := range dns {
		for _, t := range a.model.groups[strings.ToLower(dn)] {
			if !contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func covers(actions []string, act string) bool {
	return contains(actions, act)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CanManage reports whether p may manage organization org's teams, grants
// and visibility: registry admins, and holders of an admin grant on the
// whole organization (directly or through a team). For callers that act
// for a signed-in user, such as the web UI; the CLI and the control socket
// are for registry admins already.
func (a *Authorizer) CanManage(p Principal, org string) bool {
	if p.Admin {
		return true
	}
	if p.Name == "" {
		return false
	}
	list := a.model.grants[org]
	for i := range list {
		g := &list[i]
		if g.Level == store.LevelAdmin && g.repos == nil && a.model.holds(p, g) {
			return true
		}
	}
	return false
}
