package admin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/backup"
	"github.com/berth-registry/berth/internal/storetest"
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
			storetest.PushImage(t, s, repo, tag, nil, layers...)
		}},
		{"Serving", tw.remote.Dir(), func(repo, tag string, layers ...string) {
			storetest.PushImage(t, tw.remote, repo, tag, nil, layers...)
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
			s := storetest.Open(t, data)
			if _, err := s.Manifest("app", store.Reference{Tag: "v2"}); err != nil {
				t.Errorf("restored store lacks app:v2: %v", err)
			}
		})
	}
}

// backupOf runs the backup operation on dir (after base, when not nil)
// and returns the archive and the summary line.
func backupOf(t *testing.T, dir string, base []byte) ([]byte, string) {
	t.Helper()
	req := Backup{BerthVersion: "test"}
	if base != nil {
		req.IncrementalFrom = filepath.Join(t.TempDir(), "base.tar.zst")
		if err := os.WriteFile(req.IncrementalFrom, base, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if err := Call(context.Background(), dir, BackupOp, req, Stdio{Out: &out, Err: &errOut}); err != nil {
		t.Fatalf("backup: %v\nstderr: %s", err, errOut.String())
	}
	return out.Bytes(), errOut.String()
}

func TestBackup_IncrementalFromNonsense(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notes, []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Call(context.Background(), dir, BackupOp, Backup{IncrementalFrom: notes}, Stdio{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "notes.txt: not a berth backup") {
		t.Fatalf("backup --incremental-from a text file: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused backup wrote %d bytes", out.Len())
	}
}

// TestBackup_FailureSameBothWays: a backup that fails prints the same
// thing with the server stopped and running (a stopped one used to log an
// extra line on stderr).
func TestBackup_FailureSameBothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	layer := store.DigestOf(store.SHA256, []byte("app layer"))
	for _, dir := range []string{tw.local, tw.remote.Dir()} {
		if err := os.WriteFile(store.BlobPathIn(dir, layer), []byte("app lAyer"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var outs [2]bytes.Buffer
	var errOuts [2]bytes.Buffer
	var errs [2]string
	for i, dir := range []string{tw.local, tw.remote.Dir()} {
		err := Call(context.Background(), dir, BackupOp, Backup{}, Stdio{Out: &outs[i], Err: &errOuts[i]})
		errs[i] = errorString(err)
	}
	if errs[0] == "" || errs[0] != errs[1] || errOuts[0].String() != errOuts[1].String() {
		t.Fatalf("a failing backup differs:\nstopped: %q, stderr %q\nserving: %q, stderr %q", errs[0], errOuts[0].String(), errs[1], errOuts[1].String())
	}
	if !strings.Contains(errs[0], string(layer)) || errOuts[0].Len() != 0 {
		t.Errorf("error %q, stderr %q; want the error to name the rotten blob and nothing on stderr", errs[0], errOuts[0].String())
	}
}

func TestRestore_RefusesWhileServing(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	mustServe(t, s)
	err := Restore(context.Background(), s.Dir(), []backup.Input{{Name: "x", R: strings.NewReader("")}}, RestoreOptions{Force: true}, Stdio{})
	if err == nil || !strings.Contains(err.Error(), "a server is serving") {
		t.Fatalf("restore while serving: %v", err)
	}
}
