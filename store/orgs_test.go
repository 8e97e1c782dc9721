package store

import (
	"errors"
	"reflect"
	"testing"
)

func TestStore_AccessModel(t *testing.T) {
	s := mustOpen(t)
	mustAddUser(t, s, "alice")
	mustAddUser(t, s, "bob")
	steps := []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"add org", func() error { return s.AddOrg("acme") }, nil},
		{"org twice", func() error { return s.AddOrg("acme") }, ErrOrgExists},
		{"org with a user's name", func() error { return s.AddOrg("alice") }, ErrNamespaceUsed},
		{"user with an org's name", func() error { return s.AddUser(User{Name: "acme", PasswordHash: []byte("h")}) }, ErrNamespaceUsed},
		{"org name grammar", func() error { return s.AddOrg("Acme") }, ErrUserInvalid},
		{"team", func() error { return s.AddTeam("acme", "dev") }, nil},
		{"team twice", func() error { return s.AddTeam("acme", "dev") }, ErrTeamExists},
		{"team of no org", func() error { return s.AddTeam("nope", "dev") }, ErrOrgUnknown},
		{"members", func() error {
			return s.UpdateTeam("acme", "dev", func(t *Team) error { t.Members = append(t.Members, "bob", "alice", "bob"); return nil })
		}, nil},
		{"unknown member", func() error {
			return s.UpdateTeam("acme", "dev", func(t *Team) error { t.Members = append(t.Members, "zed"); return nil })
		}, ErrUserUnknown},
		{"grant to team", func() error {
			return s.PutGrant(Grant{Org: "acme", Team: "dev", Level: LevelWrite, Repos: "acme/apps/**"})
		}, nil},
		{"grant to user", func() error { return s.PutGrant(Grant{Org: "acme", User: "alice", Level: LevelAdmin}) }, nil},
		{"grant level changes in place", func() error { return s.PutGrant(Grant{Org: "acme", User: "alice", Level: LevelRead}) }, nil},
		{"grant outside the org", func() error { return s.PutGrant(Grant{Org: "acme", Team: "dev", Level: LevelRead, Repos: "other/**"}) }, ErrGrantInvalid},
		{"grant to both", func() error { return s.PutGrant(Grant{Org: "acme", Team: "dev", User: "bob", Level: LevelRead}) }, ErrGrantInvalid},
		{"grant bad level", func() error { return s.PutGrant(Grant{Org: "acme", Team: "dev", Level: "owner"}) }, ErrGrantInvalid},
		{"grant unknown team", func() error { return s.PutGrant(Grant{Org: "acme", Team: "ops", Level: LevelRead}) }, ErrTeamUnknown},
		{"grant unknown user", func() error { return s.PutGrant(Grant{Org: "acme", User: "zed", Level: LevelRead}) }, ErrUserUnknown},
		{"revoke unknown", func() error { return s.DeleteGrant(Grant{Org: "acme", User: "bob"}) }, ErrGrantUnknown},
		{"public", func() error { return s.SetVisibility("acme", true) }, nil},
		{"private inside", func() error { return s.SetVisibility("acme/secret", false) }, nil},
		{"bad name", func() error { return s.SetVisibility("Acme", true) }, ErrNameInvalid},
	}
	for _, st := range steps {
		if err := st.run(); !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
		}
	}
	m, err := s.AccessModel()
	if err != nil {
		t.Fatal(err)
	}
	want := Model{
		Orgs:  []Org{{Name: "acme", Created: m.Orgs[0].Created}},
		Teams: []Team{{Org: "acme", Name: "dev", Members: []string{"alice", "bob"}, Created: m.Teams[0].Created}},
		Grants: []Grant{
			{Org: "acme", User: "alice", Level: LevelRead},
			{Org: "acme", Repos: "acme/apps/**", Team: "dev", Level: LevelWrite},
		},
		Visibility: []Visibility{{Name: "acme", Public: true}, {Name: "acme/secret"}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("model:\n got %+v\nwant %+v", m, want)
	}

	// Deleting a user takes it out of teams and deletes its grants, so a
	// new user of the same name starts with nothing.
	if err := s.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	m, _ = s.AccessModel()
	if len(m.Grants) != 1 || m.Grants[0].Team != "dev" || !reflect.DeepEqual(m.Teams[0].Members, []string{"bob"}) {
		t.Fatalf("after deleting alice: %+v", m)
	}
	// Deleting a team deletes its grants; deleting the org its teams.
	if err := s.DeleteTeam("acme", "dev"); err != nil {
		t.Fatal(err)
	}
	if m, _ = s.AccessModel(); len(m.Grants) != 0 || len(m.Teams) != 0 {
		t.Fatalf("after deleting the team: %+v", m)
	}
	if err := s.AddTeam("acme", "ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGrant(Grant{Org: "acme", Team: "ops", Level: LevelRead}); err != nil {
		t.Fatal(err)
	}
	gen := s.AuthGeneration()
	if err := s.DeleteOrg("acme"); err != nil {
		t.Fatal(err)
	}
	if s.AuthGeneration() == gen {
		t.Error("deleting an organization did not move AuthGeneration: servers would keep the old model")
	}
	if m, _ = s.AccessModel(); len(m.Orgs)+len(m.Teams)+len(m.Grants) != 0 {
		t.Fatalf("after deleting the org: %+v", m)
	}
	if err := s.DeleteOrg("acme"); !errors.Is(err, ErrOrgUnknown) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestStore_LDAPConfig(t *testing.T) {
	s := mustOpen(t)
	if _, err := s.LDAPConfig(); !errors.Is(err, ErrLDAPNotConfigured) {
		t.Fatalf("fresh store: %v", err)
	}
	c := LDAPConfig{URL: "ldap://127.0.0.1:1389", BaseDN: "dc=x", UserFilter: "(uid=%s)", BindPassword: "pw"}
	if err := s.SetLDAPConfig(&c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LDAPConfig(); err != nil || got != c {
		t.Fatalf("LDAPConfig = %+v, %v", got, err)
	}
	if err := s.SetLDAPConfig(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LDAPConfig(); !errors.Is(err, ErrLDAPNotConfigured) {
		t.Fatalf("after turning off: %v", err)
	}
}
