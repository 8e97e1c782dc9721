package admin

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDU_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	tests := []struct {
		name  string
		words []string
		json  bool
		// want is the repositories in the order printed; wantErr the error.
		want    []string
		wantErr string
	}{
		{"All", nil, false, []string{"app", "tools", "loose"}, ""},
		{"AllJSON", nil, true, []string{"app", "tools", "loose"}, ""},
		{"Named", []string{"loose", "tools"}, false, []string{"tools", "loose"}, ""},
		{"UnknownRepository", []string{"app", "nope"}, false, nil, "repository name not known to registry: nope"},
		{"InvalidName", []string{"Bad"}, false, nil, "invalid repository name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := both(t, tw, DUOp, DU{Repos: tc.words, JSON: tc.json}, "")
			if tc.wantErr != "" {
				if !strings.Contains(r.err, tc.wantErr) {
					t.Fatalf("du %q: error %q, want %q", tc.words, r.err, tc.wantErr)
				}
				return
			}
			if r.err != "" {
				t.Fatal(r)
			}
			if got := duRepos(t, r.out, tc.json); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("du %q listed %q, want %q:\n%s", tc.words, got, tc.want, r.out)
			}
		})
	}
}

// duRepos returns the repositories of du's output, in order, and checks
// the numbers of the JSON form.
func duRepos(t *testing.T, out string, asJSON bool) []string {
	t.Helper()
	var repos []string
	if asJSON {
		var rows []repoUsageJSON
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("du --json: %v\n%s", err, out)
		}
		for _, r := range rows {
			repos = append(repos, r.Repository)
			if r.Repository == "tools" && (r.Shared != int64(len("shared layer")) || r.Blobs != 2 || r.SharedBlobs != 1 || r.Manifests != 1) {
				t.Errorf("tools: %+v", r)
			}
		}
		return repos
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if fields := strings.Fields(lines[0]); strings.Join(fields, " ") != "EXCLUSIVE SHARED BLOBS MANIFESTS REPOSITORY" {
		t.Fatalf("header %q", lines[0])
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "total: ") {
			if !strings.Contains(l, " (each counted once), ") {
				t.Errorf("total line %q", l)
			}
			continue
		}
		f := strings.Fields(l)
		repos = append(repos, f[len(f)-1])
	}
	return repos
}
