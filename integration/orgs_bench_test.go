package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/berth-registry/berth/store"
)

// BenchmarkManifestAccessModel is BenchmarkManifest's HEAD with --auth
// token, with an empty access model (today's) and with 100 organizations,
// 1,000 teams (2 members each) and 10,000 grants, the bench user reaching
// the repository through a team's grant. A Bearer token carries its
// access, so the model is consulted at /token; Basic auth consults it on
// every request. /token is measured too.
func BenchmarkManifestAccessModel(b *testing.B) {
	const repo = "org50/apps/small"
	for _, withModel := range []bool{false, true} {
		data := b.TempDir()
		fillTags(b, data, []string{repo}, 1)
		_, stderr, err := runBerth(b, b.Context(), bytes.NewReader([]byte(benchPassword+"\n")),
			"user", "add", benchUser, "--password-stdin", "--data", data)
		if err != nil {
			b.Fatalf("berth user add: %v: %s", err, stderr)
		}
		name := "empty-model"
		if withModel {
			name = "100orgs-1000teams-10000grants"
			start := time.Now()
			writeBigModel(b, data)
			b.Logf("wrote the model in %v", time.Since(start))
		} else {
			// Without a model the bench user reaches org50/ by a rule.
			runBerth(b, b.Context(), nil, "acl", "add", "--account", benchUser, "--name", "org50/**", "--actions", "pull", "--data", data)
		}
		s := startServer(b, data, "--auth", "token")
		client := benchClient(b)
		scope := "repository:" + repo + ":pull"
		tok := fetchTokenScope(b, s, scope)
		for _, m := range []struct{ name, authorization string }{
			{"bearer", "Bearer " + tok},
			{"basic", basicAuth(benchUser, benchPassword)},
		} {
			b.Run(name+"/"+m.name+"/HEAD", func(b *testing.B) {
				runConcurrently(b, s, "req/s", func(int) error {
					req, _ := http.NewRequest(http.MethodHead, s.URL("/v2/"+repo+"/manifests/v0"), nil)
					req.Header.Set("Authorization", m.authorization)
					_, _, err := benchCall(client, req, http.StatusOK, nil)
					return err
				})
			})
		}
		b.Run(name+"/token", func(b *testing.B) {
			runConcurrently(b, s, "req/s", func(int) error {
				req, _ := http.NewRequest(http.MethodGet, s.URL("/token?service=berth&scope="+scope), nil)
				req.Header.Set("Authorization", basicAuth(benchUser, benchPassword))
				_, _, err := benchCall(client, req, http.StatusOK, nil)
				return err
			})
		})
	}
}

// fetchTokenScope gets a token for scope as the bench user and checks it
// grants it.
func fetchTokenScope(b *testing.B, s *server, scope string) string {
	b.Helper()
	r := s.getToken(b, benchUser, benchPassword, map[string][]string{"service": {"berth"}, "scope": {scope}})
	answer, claims := wantToken(b, r)
	if len(claims.Access) == 0 {
		b.Fatalf("the bench user's token grants nothing for %s", scope)
	}
	return answer.Token
}

// writeBigModel writes the access model through the store, the server
// stopped: org0..org99 with team0..team9 each, members m<i>a and m<i>b,
// and 100 grants per organization; team3 of org50 holds the bench user and
// read on org50/apps/**.
func writeBigModel(b *testing.B, dir string) {
	b.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for o := range 100 {
		org := fmt.Sprintf("org%d", o)
		must(st.AddOrg(org))
		for t := range 10 {
			team := fmt.Sprintf("team%d", t)
			must(st.AddTeam(org, team))
			members := []string{fmt.Sprintf("m%da", o*10+t), fmt.Sprintf("m%db", o*10+t)}
			for _, m := range members {
				must(st.AddUser(store.User{Name: m, PasswordHash: []byte("$2a$10$unusable")}))
			}
			if org == "org50" && team == "team3" {
				members = append(members, benchUser)
			}
			must(st.UpdateTeam(org, team, func(tm *store.Team) error { tm.Members = members; return nil }))
		}
		for g := range 100 {
			gr := store.Grant{Org: org, Level: store.LevelRead, Team: fmt.Sprintf("team%d", g%10)}
			if g%2 == 1 {
				gr = store.Grant{Org: org, Level: store.LevelWrite, User: fmt.Sprintf("m%da", o*10+g%10)}
			}
			gr.Repos = fmt.Sprintf("%s/p%d/**", org, g)
			if org == "org50" && g == 3 {
				gr.Repos = "org50/apps/**"
			}
			must(st.PutGrant(gr))
		}
	}
}
