package mirror

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

func TestMirror_Route(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, mr := range []store.Mirror{
		{Name: "docker.io", URL: "https://registry-1.docker.io", DockerHub: true, Anonymous: true},
		{Name: "ghcr.io", URL: "https://ghcr.io"},
		{Name: "lab", URL: "http://10.0.0.5:5000"},
	} {
		if err := st.AddMirror(mr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.PutBlob("mine/app", store.DigestOf(store.SHA256, []byte("x")), 1, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	m := New(st, nil)
	for _, tc := range []struct {
		name, repo, ns string
		want           string // "" when not a mirror's
		anonymous      bool
	}{
		{"path prefix", "ghcr.io/org/app", "", "ghcr.io/org/app", false},
		{"path prefix, Docker Hub", "docker.io/library/alpine", "", "docker.io/library/alpine", true},
		{"ns by host", "org/app", "ghcr.io", "ghcr.io/org/app", false},
		{"ns by host and port", "team/tool", "10.0.0.5:5000", "lab/team/tool", false},
		{"ns by Docker Hub's name", "library/alpine", "docker.io", "docker.io/library/alpine", true},
		{"ns and the prefix both", "ghcr.io/org/app", "ghcr.io", "ghcr.io/org/app", false},
		{"registry-mirrors name", "library/alpine", "", "docker.io/library/alpine", true},
		{"a repository berth holds stays its own", "mine/app", "", "", false},
		{"a mirror's name alone is no repository of it", "lab", "", "docker.io/lab", true},
		{"unknown ns falls back to the other rules", "mine/app", "quay.io", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, anon, ok := m.Route(tc.repo, tc.ns)
			if ok != (tc.want != "") || got != tc.want || anon != tc.anonymous {
				t.Errorf("Route(%q, %q) = %q, %v, %v; want %q, %v", tc.repo, tc.ns, got, anon, ok, tc.want, tc.anonymous)
			}
		})
	}
	if !m.Owns("lab/team/tool") || m.Owns("mine/app") || m.Owns("lab") {
		t.Errorf("Owns is wrong about lab/team/tool, mine/app or lab")
	}
}
