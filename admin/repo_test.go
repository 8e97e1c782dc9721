package admin

import (
	"strings"
	"testing"
)

func TestRepoDel_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	tests := []struct {
		name, repo string
		want       string // the first line of output, or the error
		isErr      bool
	}{
		{"OK", "app", "deleted repository app: 1 tag, 2 manifests, 5 blob links", false},
		{"AlreadyGone", "app", "no repository app", true},
		{"InvalidName", "Bad/Name", "invalid repository name", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := both(t, tw, RepoDelOp, RepoDel{Name: tc.repo}, "")
			got := strings.SplitN(r.out, "\n", 2)[0]
			if tc.isErr {
				got = r.err
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("repo del %s: got %q, want %q\n%s", tc.repo, got, tc.want, r)
			}
		})
	}
	t.Run("GoneFromDU", func(t *testing.T) {
		r := both(t, tw, DUOp, DU{}, "")
		if got := duRepos(t, r.out, false); strings.Join(got, " ") != "tools loose" {
			t.Fatalf("du after repo del lists %q", got)
		}
	})
	t.Run("GCFreesItsBlobs", func(t *testing.T) {
		r := both(t, tw, GCOp, GC{}, "")
		// app's own: two configs, "app layer", "old app layer"; and loose.
		if !strings.Contains(r.out, "gc: removed 0 manifests, 1 link, 5 blobs,") {
			t.Fatalf("gc after repo del:\n%s", r)
		}
	})
}
