package admin

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/backup"
	"github.com/berth-registry/berth/store"
)

var summaryRE = regexp.MustCompile(`^backup [0-9a-f]{32} \((full|incremental after [0-9a-f]{32})\): meta\.db \([^)]+\) and \d+ blobs? \([^)]+\)`)

// TestBackup_BothWays backs up a stopped and a serving registry, a full
// backup and an incremental each, and restores both chains.
func TestBackup_BothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	for _, tc := range []struct {
		name string
		dir  string
		push func(repo, tag string, layers ...string)
	}{
		{"Stopped", tw.local, func(repo, tag string, layers ...string) {
			s, err := store.Open(tw.local, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			pushImage(t, s, repo, tag, layers...)
		}},
		{"Serving", tw.remote.Dir(), func(repo, tag string, layers ...string) {
			pushImage(t, tw.remote, repo, tag, layers...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full, summary := backupOf(t, tc.dir, nil)
			if m := summaryRE.FindStringSubmatch(summary); m == nil || m[1] != "full" || !strings.Contains(summary, "and 7 blobs") {
				t.Fatalf("full backup summary %q", summary)
			}
			tc.push("app", "v2", "shared layer", "v2 layer")
			inc, summary := backupOf(t, tc.dir, full)
			if m := summaryRE.FindStringSubmatch(summary); m == nil || !strings.HasPrefix(m[1], "incremental") ||
				!strings.Contains(summary, "and 2 blobs") || !strings.HasSuffix(summary, ", 7 blobs already in earlier backups\n") {
				t.Fatalf("incremental backup summary %q", summary)
			}

			data := filepath.Join(t.TempDir(), "data")
			var out bytes.Buffer
			inputs := []backup.Input{{Name: "full", R: bytes.NewReader(full)}, {Name: "inc", R: bytes.NewReader(inc)}}
			if err := Restore(context.Background(), data, inputs, RestoreOptions{}, Stdio{Out: &out}); err != nil {
				t.Fatalf("restore: %v", err)
			}
			for _, want := range []string{"read full: backup ", "(full)", "read inc: backup ", "(incremental)", "restore: restored 9 blobs"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("restore report lacks %q:\n%s", want, out.String())
				}
			}
			s := mustOpen(t, data)
			if _, err := s.Manifest("app", store.Reference{Tag: "v2"}); err != nil {
				t.Errorf("restored store lacks app:v2: %v", err)
			}
		})
	}
}

// backupOf runs the backup command on dir (after base, when not nil) and
// returns the archive and the summary line.
func backupOf(t *testing.T, dir string, base []byte) ([]byte, string) {
	t.Helper()
	args := Args{Flags: map[string]string{"berth-version": "test"}}
	var out, errOut bytes.Buffer
	stdio := Stdio{Out: &out, Err: &errOut}
	if base != nil {
		args.Flags["incremental"] = "true"
		stdio.In = bytes.NewReader(base)
	}
	if err := Run(context.Background(), dir, "backup", args, stdio); err != nil {
		t.Fatalf("backup: %v\nstderr: %s", err, errOut.String())
	}
	return out.Bytes(), errOut.String()
}

func TestBackup_IncrementalFromNonsense(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	mustCheckClose(t, s)
	args := Args{Flags: map[string]string{"incremental": "true", "base-name": "notes.txt"}}
	var out bytes.Buffer
	err := Run(context.Background(), dir, "backup", args, Stdio{In: strings.NewReader("not a backup"), Out: &out})
	if err == nil || !strings.Contains(err.Error(), "notes.txt: not a berth backup") {
		t.Fatalf("backup --incremental-from a text file: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused backup wrote %d bytes", out.Len())
	}
}

func TestRestore_RefusesWhileServing(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	mustServe(t, s)
	err := Restore(context.Background(), s.Dir(), []backup.Input{{Name: "x", R: strings.NewReader("")}}, RestoreOptions{Force: true}, Stdio{})
	if err == nil || !strings.Contains(err.Error(), "a server is serving") {
		t.Fatalf("restore while serving: %v", err)
	}
}
