package auth

import (
	"fmt"
	"testing"

	"github.com/berth-registry/berth/store"
)

// bigModel is 100 organizations with 10 teams each (1,000 teams, 5
// members each) and 10,000 grants: 100 per organization, half to teams,
// half to users, half on patterns.
func bigModel() store.Model {
	var m store.Model
	for o := range 100 {
		org := fmt.Sprintf("org%d", o)
		m.Orgs = append(m.Orgs, store.Org{Name: org})
		for t := range 10 {
			var members []string
			for u := range 5 {
				members = append(members, fmt.Sprintf("user%d", (o*10+t)*5+u))
			}
			m.Teams = append(m.Teams, store.Team{Org: org, Name: fmt.Sprintf("team%d", t), Members: members})
		}
		for g := range 100 {
			gr := store.Grant{Org: org, Level: store.LevelRead}
			if g%2 == 0 {
				gr.Team = fmt.Sprintf("team%d", g%10)
			} else {
				gr.User = fmt.Sprintf("user%d", g)
			}
			if g%4 < 2 {
				gr.Repos = fmt.Sprintf("%s/app%d/**", org, g)
			}
			m.Grants = append(m.Grants, gr)
		}
	}
	return m
}

// BenchmarkAuthorizer_Decision is the access decision of a Basic-auth
// request or a /token scope: empty model against 100 orgs, 1,000 teams and
// 10,000 grants.
func BenchmarkAuthorizer_Decision(b *testing.B) {
	for _, bc := range []struct {
		name string
		m    store.Model
	}{{"empty", store.Model{}}, {"100orgs-1000teams-10000grants", bigModel()}} {
		a, err := NewModelAuthorizer(bc.m, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			want := []string{ActionPull, ActionPush}
			for b.Loop() {
				a.Allowed("user2505", false, TypeRepository, "org50/app99/x", want)
			}
		})
	}
}

// BenchmarkAuthorizer_Compile is what a change of the model costs the next
// request: compiling 10,000 grants.
func BenchmarkAuthorizer_Compile(b *testing.B) {
	m := bigModel()
	for b.Loop() {
		if _, err := NewModelAuthorizer(m, nil, false); err != nil {
			b.Fatal(err)
		}
	}
}
