package integration

// Organizations, teams, grants and visibility against the real binary:
// the matrix of users x teams x grants x visibility x actions (pull, push,
// delete, catalog) checked three ways (token grants, token requests, Basic
// requests), the refusal's 403 message and log line, and the README's
// examples run as written.

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var orgRepos = []string{"acme/apps/api", "acme/db", "acme/web", "beta/lib", "beta/secret"}

func TestAuth_OrgsMatrix(t *testing.T) {
	s, adminPassword := startAuthServer(t, "")
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		s.addUser(t, u, u+"-password")
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range orgRepos {
		if err := remote.Write(s.ref(t, repo+":latest"), img, withAuth(t, "admin", adminPassword)...); err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
	}
	for _, cmd := range [][]string{
		{"org", "add", "acme"},
		{"org", "add", "beta"},
		{"team", "add", "acme/dev"},
		{"team", "add", "acme/ops"},
		{"team", "add-member", "acme/dev", "alice"},
		{"team", "add-member", "acme/ops", "bob"},
		{"org", "grant", "acme", "--team", "dev", "--level", "write", "--repos", "acme/apps/**"},
		{"org", "grant", "acme", "--team", "ops", "--level", "admin"},
		{"org", "grant", "beta", "--user", "carol", "--level", "read", "--repos", "beta/secret"},
		{"repo", "visibility", "acme/web", "public"},
		{"repo", "visibility", "beta", "public"},
		{"repo", "visibility", "beta/secret", "private"},
		// With a rule the default pull for everyone becomes a rule; drop
		// it so the matrix shows the model alone.
		{"acl", "add", "--account", "dave", "--name", "acme/db", "--actions", "pull"},
		{"acl", "del", "2"},
	} {
		s.berth(t, "", cmd...)
	}
	alice, bob, carol, dave, anonymous := caller{"alice", "alice-password"}, caller{"bob", "bob-password"}, caller{"carol", "carol-password"}, caller{"dave", "dave-password"}, caller{}
	s.checkMatrixOn(t, orgRepos, []caller{alice, bob, carol, dave, anonymous}, map[string]map[string]string{
		"alice":     {"acme/apps/api": "pull,push", "acme/web": "pull", "beta/lib": "pull"},
		"bob":       {"acme/apps/api": "delete,pull,push", "acme/db": "delete,pull,push", "acme/web": "delete,pull,push", "beta/lib": "pull"},
		"carol":     {"acme/web": "pull", "beta/lib": "pull", "beta/secret": "pull"},
		"dave":      {"acme/db": "pull", "acme/web": "pull", "beta/lib": "pull"},
		"anonymous": {"acme/web": "pull", "beta/lib": "pull"},
	})
	s.checkCatalog(t, alice, []string{"acme/apps/api", "acme/web", "beta/lib"})
	s.checkCatalog(t, carol, []string{"acme/web", "beta/lib", "beta/secret"})
	s.checkCatalog(t, anonymous, []string{"acme/web", "beta/lib"})

	t.Run("refused push says who and what", func(t *testing.T) {
		r := s.do(t, http.MethodPost, "/v2/acme/db/blobs/uploads/", nil, "Authorization", basicAuth("alice", "alice-password"))
		e := wantError(t, r, http.StatusForbidden, "DENIED")
		if e.Message != "alice may not push to acme/db" {
			t.Errorf("message %q, want %q", e.Message, "alice may not push to acme/db")
		}
		lines := s.logLines(`denied="push acme/db: no grant, visibility or rule grants it"`)
		if len(lines) == 0 {
			t.Errorf("no log line names the refusal; log:\n%s", s.Log())
		}
		tok, _ := wantToken(t, s.getToken(t, "alice", "alice-password", map[string][]string{"service": {"berth"}, "scope": {"repository:acme/db:pull,push"}}))
		r = s.do(t, http.MethodPost, "/v2/acme/db/blobs/uploads/", nil, "Authorization", bearer(tok.Token))
		wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
		if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
			t.Errorf("token without push: challenge %q, want insufficient_scope", ch)
		}
	})

	t.Run("access explain", func(t *testing.T) {
		for _, tc := range []struct{ args, want string }{
			{"alice push acme/apps/api", "allowed: alice push acme/apps/api: grant: team acme/dev has write on acme/apps/**\n"},
			{"anonymous pull beta/secret", "denied: anonymous pull beta/secret: no grant, visibility or rule grants it\nnote: serve --anonymous-pull, when on, lets anonymous pull everything\n"},
			{"dave pull acme/db", "allowed: dave pull acme/db: rule 1 (account dave, name acme/db, actions pull)\n"},
			{"anonymous catalog", "allowed: anonymous catalog: default: the catalog lists only what anonymous may pull\n"},
		} {
			if got := s.berth(t, "", append([]string{"access", "explain"}, strings.Fields(tc.args)...)...); got != tc.want {
				t.Errorf("access explain %s:\n got %q\nwant %q", tc.args, got, tc.want)
			}
		}
	})

	t.Run("membership removed", func(t *testing.T) {
		s.berth(t, "", "team", "del-member", "acme/dev", "alice")
		if s.probe(t, basicAuth("alice", "alice-password"), "acme/apps/api", "push") {
			t.Error("alice still pushes to acme/apps/api after leaving acme/dev")
		}
	})
}

// TestReadme_AccessExamples runs every berth org, team, repo visibility,
// access explain and acl add line of README.md's code blocks, in order,
// against a served registry, and checks the comments that state a result.
func TestReadme_AccessExamples(t *testing.T) {
	s, adminPassword := startAuthServer(t, "")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"apps/app", "acme/web", "public/x", "public/x/y"} {
		if err := remote.Write(s.ref(t, repo+":latest"), img, withAuth(t, "admin", adminPassword)...); err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
	}
	s.addUser(t, "alice", "alice-password")
	s.addUser(t, "bob", "bob-password")
	s.addUser(t, "ci", "ci-password")
	s.addUser(t, "k8s", "k8s-password")
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ran := 0
	sc := bufio.NewScanner(f)
	inCode := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		// Only code blocks hold commands: prose may start with "berth" too.
		if !inCode || !strings.HasPrefix(line, "berth ") {
			continue
		}
		cmd, comment, _ := strings.Cut(line, "#")
		fields := shellWords(t, strings.TrimSpace(cmd))
		if len(fields) < 3 || fields[0] != "berth" {
			continue
		}
		switch fields[1] + " " + fields[2] {
		case "org add", "org grant", "team add", "team add-member", "repo visibility", "access explain", "acl add":
		default:
			continue
		}
		out := s.berth(t, "", fields[1:]...)
		ran++
		if want := strings.TrimSpace(comment); fields[1] == "access" && want != "" && !strings.HasPrefix(out, strings.TrimSuffix(want, "...")) {
			t.Errorf("%s\n printed %q, README says %q", strings.TrimSpace(cmd), out, want)
		}
	}
	if ran < 10 {
		t.Fatalf("ran %d README examples; the README's access section moved?", ran)
	}
	// The README's rules mean what the README says.
	if !s.probe(t, basicAuth("k8s", "k8s-password"), "apps/app", "pull") {
		t.Error("k8s cannot pull apps/app under the README's --name '**' rule")
	}
	if !s.probe(t, basicAuth("ci", "ci-password"), "apps/team/app", "push") {
		t.Error("ci cannot push apps/team/app under the README's --name 'apps/**' rule")
	}
	if !s.probe(t, "", "acme/web", "pull") || s.probe(t, "", "public/x/y", "pull") || !s.probe(t, "", "public/x", "pull") {
		t.Error("anonymous: want pull of acme/web (public) and public/x (rule ''), not public/x/y")
	}
}

// shellWords splits a README command line on spaces, honouring single
// quotes as the shell does for these examples.
func shellWords(t *testing.T, s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, has := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote = !inQuote
			has = true
		case r == ' ' && !inQuote:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	if inQuote {
		t.Fatalf("unbalanced quote in %q", s)
	}
	return out
}

// TestDocs_AccessExamples runs the "$ berth ..." session of docs/auth.md's
// access section against a served registry and compares what each command
// prints with the lines the document shows under it.
func TestDocs_AccessExamples(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-password")
	raw, err := os.ReadFile("../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	ran := 0
	for i := 0; i < len(lines); i++ {
		cmd, ok := strings.CutPrefix(lines[i], "$ berth ")
		if !ok || strings.HasPrefix(cmd, "user ") {
			continue
		}
		var want strings.Builder
		for j := i + 1; j < len(lines) && !strings.HasPrefix(lines[j], "$ ") && !strings.HasPrefix(lines[j], "```"); j++ {
			want.WriteString(lines[j] + "\n")
		}
		got := s.berth(t, "", shellWords(t, cmd)...)
		if strings.HasPrefix(cmd, "access explain") && got != want.String() {
			t.Errorf("berth %s\n printed %q\n docs say %q", cmd, got, want.String())
		}
		ran++
	}
	if ran < 6 {
		t.Fatalf("ran %d examples of docs/auth.md; want the access section's session", ran)
	}
}
