package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestStore_MoveRule(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		want     string
		err      error
	}{
		{"up", 2, 1, "a,c,b,d", nil},
		{"down", 0, 2, "b,c,a,d", nil},
		{"to the top", 3, 0, "d,a,b,c", nil},
		{"to the bottom", 0, 3, "b,c,d,a", nil},
		{"in place", 1, 1, "a,b,c,d", nil},
		{"from past the end", 4, 0, "a,b,c,d", ErrRuleUnknown},
		{"to past the end", 0, 4, "a,b,c,d", ErrRuleUnknown},
		{"negative", -1, 0, "a,b,c,d", ErrRuleUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			for _, n := range []string{"a", "b", "c", "d"} {
				if err := s.InsertRule(Rule{Name: n, Actions: []string{"pull"}}, -1); err != nil {
					t.Fatal(err)
				}
			}
			gen := s.AuthGeneration()
			err := s.MoveRule(tc.from, tc.to)
			if !errors.Is(err, tc.err) {
				t.Fatalf("MoveRule(%d, %d): %v, want %v", tc.from, tc.to, err, tc.err)
			}
			if got := ruleNames(t, s); got != tc.want {
				t.Fatalf("MoveRule(%d, %d): rules %s, want %s", tc.from, tc.to, got, tc.want)
			}
			if err == nil && s.AuthGeneration() == gen {
				t.Error("the auth generation did not move: cached rules would stay stale")
			}
		})
	}
}

func TestStore_SetAdmin(t *testing.T) {
	s := mustOpen(t)
	root := mustAddUser(t, s, "root")
	if err := s.SetAdmin("root", true); err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, s, "alice")
	if err := s.SetAdmin("alice", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdmin("root", false); err != nil {
		t.Fatalf("revoke root while alice is admin: %v", err)
	}
	if err := s.SetAdmin("alice", false); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoke the last admin: %v, want ErrLastAdmin", err)
	}
	if err := s.SetAdmin("nobody", true); !errors.Is(err, ErrUserUnknown) {
		t.Fatalf("SetAdmin of nobody: %v, want ErrUserUnknown", err)
	}
	u, err := s.User("root")
	if err != nil {
		t.Fatal(err)
	}
	if u.Admin || u.Epoch != root.Epoch || string(u.PasswordHash) != string(root.PasswordHash) {
		t.Fatalf("root after revoke: %+v; want no admin, epoch and password unchanged", u)
	}
	if a, _ := s.User("alice"); !a.Admin {
		t.Fatal("alice lost the admin right the refused revoke was to take")
	}
}

// The history keeps the newest 50 of each kind, newest first, and one
// kind's records never push out another's.
func TestStore_HistoryBounded(t *testing.T) {
	s := mustOpen(t)
	if err := s.RecordBackup(BackupRun{ID: "only", Size: 7}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		if err := s.RecordGCRun(GCRun{Started: t0.Add(time.Duration(i) * time.Minute), Blobs: i}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.GCRuns()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != historyKeep || runs[0].Blobs != 59 || runs[len(runs)-1].Blobs != 10 {
		t.Fatalf("%d runs, newest %d, oldest %d; want %d from 59 down to 10", len(runs), runs[0].Blobs, runs[len(runs)-1].Blobs, historyKeep)
	}
	if !runs[0].Started.Equal(t0.Add(59 * time.Minute)) {
		t.Errorf("newest run started %s", runs[0].Started)
	}
	backups, err := s.Backups()
	if err != nil || len(backups) != 1 || backups[0].ID != "only" || backups[0].Size != 7 {
		t.Fatalf("backups after 60 gc runs: %+v, %v", backups, err)
	}
}

// Summaries agree with Usage, TagCount and LastPush, and Generation moves
// with a write and only then.
func TestStore_Summaries(t *testing.T) {
	s := mustOpen(t)
	gen, err := s.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Generation(); again != gen {
		t.Fatalf("generation moved without a write: %d, %d", gen, again)
	}
	mustAddUser(t, s, "someone")
	if after, _ := s.Generation(); after == gen {
		t.Fatal("generation did not move with a write")
	}
	sums, _, err := s.Summaries()
	if err != nil || len(sums) != 0 {
		t.Fatalf("an empty store: %v, %v", sums, err)
	}

	shared := "shared layer, 27 bytes long"
	pushImage(t, s, "b", "b", "v1", "", shared)
	pushImage(t, s, "a", "a", "v1", "", shared, "a's own layer")
	pushImage(t, s, "a", "a", "v2", "", "another layer of a")
	sums, sumGen, err := s.Summaries()
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := s.Generation(); now != sumGen {
		t.Errorf("Summaries' generation %d, the store's %d, with no write between", sumGen, now)
	}
	if len(sums) != 2 || sums[0].Repo != "a" || sums[1].Repo != "b" {
		t.Fatalf("summaries not in name order: %+v", sums)
	}
	for _, sum := range sums {
		u, err := s.Usage(sum.Repo)
		if err != nil {
			t.Fatal(err)
		}
		tags, _ := s.TagCount(sum.Repo)
		last, _ := s.LastPush(sum.Repo)
		if !reflect.DeepEqual(sum.RepoUsage, u[0]) || sum.Tags != tags || !sum.LastPush.Equal(last) || last.IsZero() {
			t.Errorf("%s: summary %+v; want usage %+v, %d tags, last push %s", sum.Repo, sum, u[0], tags, last)
		}
	}
}
