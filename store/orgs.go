package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The access model of organizations, teams, grants and visibility. The
// store keeps the records and their integrity (a grant names an existing
// organization and team or user; deleting one deletes what hangs off it);
// server/auth compiles them with the access rules and defines the decision.
var (
	bucketOrgs       = []byte("orgs")
	bucketTeams      = []byte("teams")
	bucketGrants     = []byte("grants")
	bucketVisibility = []byte("visibility")
)

// Sentinel errors of the access model.
var (
	ErrOrgExists     = errors.New("organization already exists")
	ErrOrgUnknown    = errors.New("organization unknown")
	ErrTeamExists    = errors.New("team already exists")
	ErrTeamUnknown   = errors.New("team unknown")
	ErrGrantInvalid  = errors.New("invalid grant")
	ErrGrantUnknown  = errors.New("grant unknown")
	ErrNamespaceUsed = errors.New("namespace already used")
)

// Grant levels, from least to most.
const (
	LevelRead  = "read"  // pull
	LevelWrite = "write" // pull, push
	LevelAdmin = "admin" // pull, push, delete; manage the organization's teams and visibility
)

// Org is an organization: a namespace (the first component of its
// repositories' names) that users do not own personally.
type Org struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Team is a group of users inside an organization. LDAPGroup, when set, is
// the DN of a directory group whose members count as the team's members
// while they are signed in through LDAP.
type Team struct {
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	Members   []string  `json:"members"`
	LDAPGroup string    `json:"ldapGroup,omitempty"`
	Created   time.Time `json:"created"`
}

// Grant gives a team or a user a level on an organization's repositories:
// every one of them when Repos is "", else those matching Repos, a pattern
// of full repository names inside the organization ("acme/apps/**").
// Exactly one of Team and User is set.
type Grant struct {
	Org   string `json:"org"`
	Repos string `json:"repos,omitempty"`
	Team  string `json:"team,omitempty"`
	User  string `json:"user,omitempty"`
	Level string `json:"level"`
}

// Visibility is a repository's or namespace's pull visibility: Public
// lets anonymous callers and every user pull it. Name is a repository
// name or a namespace (a leading part of names, without the trailing /).
type Visibility struct {
	Name   string `json:"name"`
	Public bool   `json:"public"`
}

// Model is the whole access model, read in one transaction.
type Model struct {
	Orgs       []Org        `json:"orgs"`
	Teams      []Team       `json:"teams"`
	Grants     []Grant      `json:"grants"`
	Visibility []Visibility `json:"visibility"`
}

// ValidLevel reports whether level is read, write or admin.
func ValidLevel(level string) bool {
	return level == LevelRead || level == LevelWrite || level == LevelAdmin
}

// AddOrg creates the organization name. Its name follows the grammar of
// account names (ValidateUserName) and may not be a user's name, since both
// own the namespace of that name. Errors wrap ErrUserInvalid, ErrOrgExists
// or ErrNamespaceUsed.
func (s *Store) AddOrg(name string) error {
	if err := ValidateUserName(name); err != nil {
		return fmt.Errorf("organization name: %w", err)
	}
	now := s.now().UTC()
	return s.updateAuth(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOrgs).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s", ErrOrgExists, name)
		}
		if tx.Bucket(bucketUsers).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s is a user's personal namespace", ErrNamespaceUsed, name)
		}
		return putRecord(tx, bucketOrgs, []byte(name), Org{Name: name, Created: now})
	})
}

// DeleteOrg deletes the organization name with its teams and grants (not
// its repositories). It returns ErrOrgUnknown.
func (s *Store) DeleteOrg(name string) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		if err := needOrg(tx, name); err != nil {
			return err
		}
		prefix := append([]byte(name), sep)
		if err := deletePrefix(tx.Bucket(bucketTeams), prefix); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketGrants), prefix); err != nil {
			return err
		}
		return tx.Bucket(bucketOrgs).Delete([]byte(name))
	})
}

// AddTeam creates the team name in org. Errors wrap ErrOrgUnknown,
// ErrUserInvalid (the name's grammar) or ErrTeamExists.
func (s *Store) AddTeam(org, name string) error {
	if err := ValidateUserName(name); err != nil {
		return fmt.Errorf("team name: %w", err)
	}
	now := s.now().UTC()
	return s.updateAuth(func(tx *bolt.Tx) error {
		if err := needOrg(tx, org); err != nil {
			return err
		}
		k := key(org, name)
		if tx.Bucket(bucketTeams).Get(k) != nil {
			return fmt.Errorf("%w: %s/%s", ErrTeamExists, org, name)
		}
		return putRecord(tx, bucketTeams, k, Team{Org: org, Name: name, Members: []string{}, Created: now})
	})
}

// DeleteTeam deletes the team and its grants. It returns ErrTeamUnknown.
func (s *Store) DeleteTeam(org, name string) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		if _, err := getTeam(tx, org, name); err != nil {
			return err
		}
		if err := deleteGrants(tx, org, func(g Grant) bool { return g.Team == name }); err != nil {
			return err
		}
		return tx.Bucket(bucketTeams).Delete(key(org, name))
	})
}

// UpdateTeam changes the team org/name with fn (members, LDAP group) and
// stores the result. Members must be existing users; the list is kept sorted
// without repeats. It returns ErrTeamUnknown, or ErrUserUnknown naming the
// first member that is not a user.
func (s *Store) UpdateTeam(org, name string, fn func(t *Team) error) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		t, err := getTeam(tx, org, name)
		if err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		slices.Sort(t.Members)
		t.Members = slices.Compact(t.Members)
		for _, m := range t.Members {
			if tx.Bucket(bucketUsers).Get([]byte(m)) == nil {
				return fmt.Errorf("%w: %s", ErrUserUnknown, m)
			}
		}
		t.Org, t.Name = org, name
		return putRecord(tx, bucketTeams, key(org, name), t)
	})
}

// PutGrant adds g, or changes the level of the grant to the same team or
// user on the same repositories. The store checks that the organization,
// team or user exist, that the level is known and that Repos names
// repositories of the organization; the pattern syntax is server/auth's
// (auth.ValidateGrant). Errors wrap ErrGrantInvalid, ErrOrgUnknown,
// ErrTeamUnknown or ErrUserUnknown.
func (s *Store) PutGrant(g Grant) error {
	if err := checkGrantShape(g); err != nil {
		return err
	}
	return s.updateAuth(func(tx *bolt.Tx) error {
		if err := needOrg(tx, g.Org); err != nil {
			return err
		}
		if g.Team != "" {
			if _, err := getTeam(tx, g.Org, g.Team); err != nil {
				return err
			}
		} else if tx.Bucket(bucketUsers).Get([]byte(g.User)) == nil {
			return fmt.Errorf("%w: %s", ErrUserUnknown, g.User)
		}
		return tx.Bucket(bucketGrants).Put(grantKey(g), []byte(g.Level))
	})
}

// DeleteGrant deletes the grant to g's team or user on g.Repos in g.Org,
// whatever its level. It returns ErrGrantUnknown.
func (s *Store) DeleteGrant(g Grant) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		k := grantKey(g)
		if tx.Bucket(bucketGrants).Get(k) == nil {
			return fmt.Errorf("%w: %s", ErrGrantUnknown, g.String())
		}
		return tx.Bucket(bucketGrants).Delete(k)
	})
}

// SetVisibility makes the repository or namespace name public or private.
// Both are kept as records, because the most specific record wins: a
// private repository inside a public namespace stays private. It returns an error wrapping
// ErrNameInvalid for a name outside the repository grammar.
func (s *Store) SetVisibility(name string, public bool) error {
	if err := ValidateRepository(name); err != nil {
		return err
	}
	return s.updateAuth(func(tx *bolt.Tx) error {
		v := "private"
		if public {
			v = "public"
		}
		return tx.Bucket(bucketVisibility).Put([]byte(name), []byte(v))
	})
}

// AccessModel returns every organization, team, grant and visibility, each
// sorted by key, as of one transaction. On a data directory opened read-only
// before these buckets existed, it returns an empty Model.
func (s *Store) AccessModel() (Model, error) {
	m := Model{Orgs: []Org{}, Teams: []Team{}, Grants: []Grant{}, Visibility: []Visibility{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOrgs) == nil {
			return nil
		}
		err := tx.Bucket(bucketOrgs).ForEach(func(k, v []byte) error {
			var o Org
			if err := decode(v, &o); err != nil {
				return fmt.Errorf("organization %q: %w", k, err)
			}
			m.Orgs = append(m.Orgs, o)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketTeams).ForEach(func(k, v []byte) error {
			var t Team
			if err := decode(v, &t); err != nil {
				return fmt.Errorf("team %q: %w", k, err)
			}
			m.Teams = append(m.Teams, t)
			return nil
		})
		if err != nil {
			return err
		}
		err = forEachGrant(tx, "", func(_ []byte, g Grant) error {
			m.Grants = append(m.Grants, g)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketVisibility).ForEach(func(k, v []byte) error {
			m.Visibility = append(m.Visibility, Visibility{Name: string(k), Public: string(v) == "public"})
			return nil
		})
	})
	return m, err
}

// forgetUser removes name from every team and deletes the grants made to
// it, so a user created later under the same name starts with nothing.
func forgetUser(tx *bolt.Tx, name string) error {
	teams := tx.Bucket(bucketTeams)
	if teams == nil {
		return nil
	}
	var changed []Team
	err := teams.ForEach(func(k, v []byte) error {
		var t Team
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("team %q: %w", k, err)
		}
		if i := slices.Index(t.Members, name); i >= 0 {
			t.Members = slices.Delete(t.Members, i, i+1)
			changed = append(changed, t)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range changed {
		if err := putRecord(tx, bucketTeams, key(t.Org, t.Name), t); err != nil {
			return err
		}
	}
	return deleteGrants(tx, "", func(g Grant) bool { return g.User == name })
}

// deleteGrants deletes the grants of org (of every organization when org
// is "") for which doomed is true, collecting their keys first.
func deleteGrants(tx *bolt.Tx, org string, doomed func(Grant) bool) error {
	var keys [][]byte
	err := forEachGrant(tx, org, func(k []byte, g Grant) error {
		if doomed(g) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketGrants).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func checkGrantShape(g Grant) error {
	switch {
	case !ValidLevel(g.Level):
		return fmt.Errorf("%w: level %q (want read, write or admin)", ErrGrantInvalid, g.Level)
	case (g.Team == "") == (g.User == ""):
		return fmt.Errorf("%w: name exactly one of a team and a user", ErrGrantInvalid)
	case g.Repos != "" && !strings.HasPrefix(g.Repos, g.Org+"/"):
		return fmt.Errorf("%w: repositories %q are outside organization %s (start the pattern with %s/)", ErrGrantInvalid, g.Repos, g.Org, g.Org)
	case strings.IndexByte(g.Repos, sep) >= 0:
		return fmt.Errorf("%w: repositories pattern contains a NUL byte", ErrGrantInvalid)
	}
	return nil
}

func grantKey(g Grant) []byte {
	kind, who := "u", g.User
	if g.Team != "" {
		kind, who = "t", g.Team
	}
	return key(g.Org, g.Repos, kind, who)
}

// String describes g as "team acme/dev has write on acme/apps/**" (an
// organization-wide grant is "on acme/**"), without "has <level>" when
// Level is empty.
func (g Grant) String() string {
	who := "user " + g.User
	if g.Team != "" {
		who = "team " + g.Org + "/" + g.Team
	}
	on := g.Repos
	if on == "" {
		on = g.Org + "/**"
	}
	if g.Level == "" {
		return who + " on " + on
	}
	return who + " has " + g.Level + " on " + on
}

// forEachGrant calls fn for each grant of org, or of every organization when
// org is "".
func forEachGrant(tx *bolt.Tx, org string, fn func(k []byte, g Grant) error) error {
	b := tx.Bucket(bucketGrants)
	if b == nil {
		return nil
	}
	var prefix []byte
	if org != "" {
		prefix = append([]byte(org), sep)
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		parts := bytes.Split(k, []byte{sep})
		if len(parts) != 4 {
			return fmt.Errorf("grant key %q: want 4 parts", k)
		}
		g := Grant{Org: string(parts[0]), Repos: string(parts[1]), Level: string(v)}
		if string(parts[2]) == "t" {
			g.Team = string(parts[3])
		} else {
			g.User = string(parts[3])
		}
		if err := fn(bytes.Clone(k), g); err != nil {
			return err
		}
	}
	return nil
}

func needOrg(tx *bolt.Tx, name string) error {
	if tx.Bucket(bucketOrgs).Get([]byte(name)) == nil {
		return fmt.Errorf("%w: %s", ErrOrgUnknown, name)
	}
	return nil
}

func getTeam(tx *bolt.Tx, org, name string) (Team, error) {
	if err := needOrg(tx, org); err != nil {
		return Team{}, err
	}
	v := tx.Bucket(bucketTeams).Get(key(org, name))
	if v == nil {
		return Team{}, fmt.Errorf("%w: %s/%s", ErrTeamUnknown, org, name)
	}
	var t Team
	if err := decode(v, &t); err != nil {
		return Team{}, fmt.Errorf("team %s/%s: %w", org, name, err)
	}
	return t, nil
}

func putRecord(tx *bolt.Tx, bucket, k []byte, v any) error {
	enc, err := encode(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(k, enc)
}

// deletePrefix deletes the keys of b that start with prefix, collecting
// them first: deleting under a cursor can skip keys.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var doomed [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
