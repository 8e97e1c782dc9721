package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// The access model's commands: organizations (org), their teams (team),
// grants (org grant, org revoke), visibility (repo visibility) and the
// decision itself (access explain). The web UI calls the same operations.

// OrgName names one organization.
type OrgName struct {
	Name string `arg:"ORG" json:"name"`
}

// OrgList lists the organizations with their teams and grants, and every
// visibility record.
type OrgList struct{}

// TeamName names one team as ORG/TEAM.
type TeamName struct {
	Team string `arg:"ORG/TEAM" json:"team"`
}

// TeamMember adds a user to a team or removes one.
type TeamMember struct {
	Team string `arg:"ORG/TEAM" json:"team"`
	User string `arg:"USER" json:"user"`
}

// TeamLDAPGroup maps a directory group to a team; an empty DN removes it.
type TeamLDAPGroup struct {
	Team string `arg:"ORG/TEAM" json:"team"`
	DN   string `arg:"GROUP-DN?" json:"dn"`
}

// OrgGrant gives a team or a user a level on an organization's
// repositories; OrgRevoke takes it back (its Level is ignored).
type OrgGrant struct {
	Org   string `arg:"ORG" json:"org"`
	Team  string `flag:"team" usage:"the team (of ORG) the grant is for" json:"team,omitempty"`
	User  string `flag:"user" usage:"the user the grant is for" json:"user,omitempty"`
	Level string `flag:"level" usage:"read (pull), write (pull, push) or admin (also delete)" json:"level,omitempty"`
	Repos string `flag:"repos" usage:"a pattern of ORG's repositories (ORG/apps/**); empty: all of them" json:"repos,omitempty"`
}

// RepoVisibility makes a repository or namespace public or private.
type RepoVisibility struct {
	Name       string `arg:"NAME" json:"name"`
	Visibility string `arg:"public|private" json:"visibility"`
}

// AccessExplain asks whether an account may take an action on a
// repository, and why.
type AccessExplain struct {
	Account string `arg:"ACCOUNT" json:"account"` // "" or "anonymous" for the anonymous caller
	Action  string `arg:"ACTION" json:"action"`   // pull, push, delete, or catalog
	Repo    string `arg:"REPO?" json:"repo"`
}

// ModelChange is the result of the commands that change the model.
type ModelChange struct {
	Message string `json:"message"`
}

// Explained is the result of access explain.
type Explained struct {
	Account  string `json:"account"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
	auth.Decision
	Note string `json:"note,omitempty"`
}

var OrgAddOp = register(&Op[OrgName, ModelChange]{
	Name: "org add",
	Do: func(_ context.Context, env *Env, _ *Task, req OrgName) (*ModelChange, error) {
		if err := env.Store.AddOrg(req.Name); err != nil {
			return nil, fmt.Errorf("add organization: %w", err)
		}
		return &ModelChange{Message: fmt.Sprintf("added organization %s: it owns the namespace %s/ (private until `berth repo visibility %s public`)", req.Name, req.Name, req.Name)}, nil
	},
	Render: renderModelChange,
})

var OrgDelOp = register(&Op[OrgName, ModelChange]{
	Name: "org del",
	Do: func(_ context.Context, env *Env, _ *Task, req OrgName) (*ModelChange, error) {
		if err := env.Store.DeleteOrg(req.Name); err != nil {
			return nil, fmt.Errorf("delete organization: %w", err)
		}
		return &ModelChange{Message: fmt.Sprintf("deleted organization %s with its teams and grants; its repositories stay (berth repo del)", req.Name)}, nil
	},
	Render: renderModelChange,
})

var OrgListOp = register(&Op[OrgList, store.Model]{
	Name: "org list",
	Do: func(_ context.Context, env *Env, _ *Task, _ OrgList) (*store.Model, error) {
		m, err := env.Store.AccessModel()
		if err != nil {
			return nil, fmt.Errorf("read the access model: %w", err)
		}
		return &m, nil
	},
	Render: renderModel,
})

var TeamAddOp = register(&Op[TeamName, ModelChange]{
	Name: "team add",
	Do: func(_ context.Context, env *Env, _ *Task, req TeamName) (*ModelChange, error) {
		org, team, err := splitTeam(req.Team)
		if err != nil {
			return nil, err
		}
		if err := env.Store.AddTeam(org, team); err != nil {
			return nil, fmt.Errorf("add team: %w", err)
		}
		return &ModelChange{Message: fmt.Sprintf("added team %s/%s (no members, no grants)", org, team)}, nil
	},
	Render: renderModelChange,
})

var TeamDelOp = register(&Op[TeamName, ModelChange]{
	Name: "team del",
	Do: func(_ context.Context, env *Env, _ *Task, req TeamName) (*ModelChange, error) {
		org, team, err := splitTeam(req.Team)
		if err != nil {
			return nil, err
		}
		if err := env.Store.DeleteTeam(org, team); err != nil {
			return nil, fmt.Errorf("delete team: %w", err)
		}
		return &ModelChange{Message: fmt.Sprintf("deleted team %s/%s and its grants", org, team)}, nil
	},
	Render: renderModelChange,
})

var TeamAddMemberOp = register(&Op[TeamMember, ModelChange]{
	Name: "team add-member",
	Do: func(_ context.Context, env *Env, _ *Task, req TeamMember) (*ModelChange, error) {
		return changeMembers(env, req, true)
	},
	Render: renderModelChange,
})

var TeamDelMemberOp = register(&Op[TeamMember, ModelChange]{
	Name: "team del-member",
	Do: func(_ context.Context, env *Env, _ *Task, req TeamMember) (*ModelChange, error) {
		return changeMembers(env, req, false)
	},
	Render: renderModelChange,
})

var TeamLDAPGroupOp = register(&Op[TeamLDAPGroup, ModelChange]{
	Name: "team ldap-group",
	Do: func(_ context.Context, env *Env, _ *Task, req TeamLDAPGroup) (*ModelChange, error) {
		org, team, err := splitTeam(req.Team)
		if err != nil {
			return nil, err
		}
		err = env.Store.UpdateTeam(org, team, func(t *store.Team) error {
			t.LDAPGroup = strings.TrimSpace(req.DN)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("map LDAP group: %w", err)
		}
		if req.DN == "" {
			return &ModelChange{Message: fmt.Sprintf("team %s/%s has no LDAP group now", org, team)}, nil
		}
		return &ModelChange{Message: fmt.Sprintf("members of LDAP group %s are members of %s/%s when they sign in through LDAP", req.DN, org, team)}, nil
	},
	Render: renderModelChange,
})

var OrgGrantOp = register(&Op[OrgGrant, ModelChange]{
	Name: "org grant",
	Do: func(_ context.Context, env *Env, _ *Task, req OrgGrant) (*ModelChange, error) {
		g := store.Grant{Org: req.Org, Team: req.Team, User: req.User, Level: req.Level, Repos: req.Repos}
		if err := auth.ValidateGrant(g); err != nil {
			return nil, err
		}
		if err := env.Store.PutGrant(g); err != nil {
			return nil, fmt.Errorf("grant: %w", err)
		}
		return &ModelChange{Message: "granted: " + g.String()}, nil
	},
	Render: renderModelChange,
})

var OrgRevokeOp = register(&Op[OrgGrant, ModelChange]{
	Name: "org revoke",
	Do: func(_ context.Context, env *Env, _ *Task, req OrgGrant) (*ModelChange, error) {
		g := store.Grant{Org: req.Org, Team: req.Team, User: req.User, Repos: req.Repos}
		if err := env.Store.DeleteGrant(g); err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
		return &ModelChange{Message: "revoked the grant to " + g.String()}, nil
	},
	Render: renderModelChange,
})

var RepoVisibilityOp = register(&Op[RepoVisibility, ModelChange]{
	Name: "repo visibility",
	Do: func(_ context.Context, env *Env, _ *Task, req RepoVisibility) (*ModelChange, error) {
		var public bool
		switch req.Visibility {
		case "public":
			public = true
		case "private":
		default:
			return nil, fmt.Errorf("visibility %q: want public or private", req.Visibility)
		}
		if err := env.Store.SetVisibility(req.Name, public); err != nil {
			return nil, fmt.Errorf("set visibility: %w", err)
		}
		if public {
			return &ModelChange{Message: fmt.Sprintf("%s is public: anyone, anonymous included, may pull it (and what is under %s/)", req.Name, req.Name)}, nil
		}
		return &ModelChange{Message: fmt.Sprintf("%s is private: only grants and rules let anyone pull it", req.Name)}, nil
	},
	Render: renderModelChange,
})

var AccessExplainOp = register(&Op[AccessExplain, Explained]{
	Name: "access explain",
	Do: func(_ context.Context, env *Env, _ *Task, req AccessExplain) (*Explained, error) {
		p := auth.Principal{Name: req.Account}
		if req.Account == "anonymous" || req.Account == `""` {
			p.Name = ""
		}
		var note string
		if p.Name != "" {
			u, err := env.Store.User(p.Name)
			switch {
			case err == nil:
				p.Admin = u.Admin
			case errors.Is(err, store.ErrUserUnknown):
				// Perhaps a directory user: its teams are its groups' now.
				c, cerr := env.Store.LDAPConfig()
				if cerr != nil {
					return nil, fmt.Errorf("account %s: %w", p.Name, err)
				}
				lu, lerr := auth.LDAPLookup(c, p.Name)
				if lerr != nil {
					return nil, fmt.Errorf("account %s: no local user, and LDAP: %w", p.Name, lerr)
				}
				authz, aerr := auth.LoadAuthorizer(env.Store, false)
				if aerr != nil {
					return nil, aerr
				}
				p.Teams = authz.TeamsOfGroups(lu.Groups)
				note = fmt.Sprintf("%s is an LDAP user (%s), in teams %s", p.Name, lu.DN, strings.Join(p.Teams, ","))
			default:
				return nil, fmt.Errorf("account %s: %w", p.Name, err)
			}
		}
		typ, name, action := auth.TypeRepository, req.Repo, req.Action
		if req.Action == "catalog" {
			typ, name, action = auth.TypeRegistry, auth.CatalogName, auth.ActionAll
		} else if err := store.ValidateRepository(req.Repo); err != nil {
			return nil, err
		}
		authz, err := auth.LoadAuthorizer(env.Store, false)
		if err != nil {
			return nil, err
		}
		res := &Explained{Account: req.Account, Action: req.Action, Resource: name, Decision: authz.Explain(p, typ, name, action), Note: note}
		if !res.Allowed && p.Name == "" {
			res.Note = "serve --anonymous-pull, when on, lets anonymous pull everything"
		}
		return res, nil
	},
	Render: func(w Output, res *Explained) error {
		verdict := "denied"
		if res.Allowed {
			verdict = "allowed"
		}
		what := res.Action + " " + res.Resource
		if res.Action == "catalog" {
			what = "catalog"
		}
		if _, err := fmt.Fprintf(w.Out, "%s: %s %s: %s\n", verdict, res.Account, what, res.Reason); err != nil {
			return err
		}
		if res.Note != "" {
			_, err := fmt.Fprintln(w.Out, "note: "+res.Note)
			return err
		}
		return nil
	},
})

func changeMembers(env *Env, req TeamMember, add bool) (*ModelChange, error) {
	org, team, err := splitTeam(req.Team)
	if err != nil {
		return nil, err
	}
	err = env.Store.UpdateTeam(org, team, func(t *store.Team) error {
		i := slices.Index(t.Members, req.User)
		switch {
		case add:
			t.Members = append(t.Members, req.User)
		case i < 0:
			return fmt.Errorf("%s is not a member of %s/%s", req.User, org, team)
		default:
			t.Members = slices.Delete(t.Members, i, i+1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("change members: %w", err)
	}
	if add {
		return &ModelChange{Message: fmt.Sprintf("%s is a member of %s/%s", req.User, org, team)}, nil
	}
	return &ModelChange{Message: fmt.Sprintf("%s is no longer a member of %s/%s", req.User, org, team)}, nil
}

func splitTeam(s string) (org, team string, err error) {
	org, team, ok := strings.Cut(s, "/")
	if !ok || org == "" || team == "" || strings.Contains(team, "/") {
		return "", "", fmt.Errorf("%q: name a team as ORG/TEAM", s)
	}
	return org, team, nil
}

func renderModelChange(w Output, res *ModelChange) error {
	_, err := fmt.Fprintln(w.Out, res.Message)
	return err
}

func renderModel(w Output, m *store.Model) error {
	if len(m.Orgs) == 0 && len(m.Visibility) == 0 {
		_, err := fmt.Fprintln(w.Out, "no organizations (berth org add NAME)")
		return err
	}
	tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
	for _, o := range m.Orgs {
		fmt.Fprintf(tw, "org %s\n", o.Name)
		for _, t := range m.Teams {
			if t.Org != o.Name {
				continue
			}
			line := fmt.Sprintf("  team %s/%s\tmembers: %s", t.Org, t.Name, strings.Join(t.Members, ","))
			if t.LDAPGroup != "" {
				line += "\tldap group: " + t.LDAPGroup
			}
			fmt.Fprintln(tw, line)
		}
		for _, g := range m.Grants {
			if g.Org == o.Name {
				fmt.Fprintf(tw, "  grant\t%s\n", g)
			}
		}
	}
	for _, v := range m.Visibility {
		state := "private"
		if v.Public {
			state = "public"
		}
		fmt.Fprintf(tw, "visibility %s\t%s\n", v.Name, state)
	}
	return tw.Flush()
}
