package admin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// fillTwin gives both directories of tw the same content: two repositories
// sharing a layer, an untagged image, a loose blob and an orphan file.
func fillTwin(t *testing.T, tw *twin) {
	t.Helper()
	fill := func(s *store.Store) {
		storetest.PushImage(t, s, "app", "v1", nil, "shared layer", "app layer")
		storetest.PushImage(t, s, "app", "", nil, "shared layer", "old app layer")
		storetest.PushImage(t, s, "tools", "latest", nil, "shared layer")
		d := store.DigestOf(store.SHA256, []byte("loose"))
		if _, err := s.PutBlob("loose", d, 5, strings.NewReader("loose")); err != nil {
			t.Fatal(err)
		}
		orphan := s.BlobPath(store.DigestOf(store.SHA256, []byte("orphan")))
		os.MkdirAll(filepath.Dir(orphan), 0o755)
		if err := os.WriteFile(orphan, []byte("orphan"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local, err := store.Open(tw.local, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(local)
	local.Close()
	fill(tw.remote)
}

func TestGC_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	dry := both(t, tw, GCOp, GC{DryRun: true}, "")
	if dry.err != "" {
		t.Fatal(dry)
	}
	again := both(t, tw, GCOp, GC{DryRun: true}, "")
	if again != dry {
		t.Fatalf("a second dry run differs, so the first changed something:\n%s\n%s", dry, again)
	}
	done := both(t, tw, GCOp, GC{}, "")
	if done.err != "" {
		t.Fatal(done)
	}
	if want := strings.ReplaceAll(strings.ReplaceAll(dry.out, "would remove", "removed"), "to free", "freed"); done.out != want {
		t.Fatalf("gc did other than its dry run said:\ndry run:\n%s\ngc:\n%s", dry.out, done.out)
	}
	summary := lastLine(done.out)
	if want := "gc: removed 1 manifest, 3 links, 3 blobs, 0 uploads, 1 orphan file, 1 empty repository; "; !strings.HasPrefix(summary, want) {
		t.Fatalf("summary %q, want it to start with %q\nfull output:\n%s", summary, want, done.out)
	}
	for _, line := range []string{"removed empty repository loose\n", "removed file blobs/sha256/"} {
		if !strings.Contains(done.out, line) {
			t.Errorf("output lacks %q:\n%s", line, done.out)
		}
	}
	if after := both(t, tw, GCOp, GC{}, ""); lastLine(after.out) != "gc: removed 0 manifests, 0 links, 0 blobs, 0 uploads, 0 orphan files, 0 empty repositories; 0 B freed" {
		t.Fatalf("a second gc still found something:\n%s", after)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestGC_Ages: the command line's zero is "no age limit", a negative age
// is refused, and the defaults are the store's.
func TestGC_Ages(t *testing.T) {
	if d := GCOp.Defaults; d.Grace != store.DefaultGrace || d.UploadTTL != store.DefaultUploadTTL {
		t.Errorf("defaults %+v, want the store's", d)
	}
	tests := []struct {
		in   time.Duration
		want time.Duration
		err  string
	}{
		{0, store.NoAge, ""},
		{90 * time.Minute, 90 * time.Minute, ""},
		{-time.Hour, 0, "--grace: -1h0m0s is negative"},
	}
	for _, tc := range tests {
		got, err := age("grace", tc.in)
		if got != tc.want || errorString(err) != tc.err {
			t.Errorf("age(%s) = %s, %v; want %s, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	r := call(t, t.TempDir(), GCOp, GC{Grace: -time.Hour}, "")
	if r.err != "--grace: -1h0m0s is negative" || r.out != "" {
		t.Errorf("gc with a negative grace:\n%s", r)
	}
}

func TestWriteGCReport(t *testing.T) {
	d := store.DigestOf(store.SHA256, []byte("x"))
	full := store.GCReport{
		Manifests:    []store.RemovedManifest{{Repo: "app", Digest: d, Size: 1536}},
		Links:        []store.RemovedLink{{Repo: "app", Digest: d}, {Repo: "web", Digest: d}},
		Blobs:        []store.RemovedBlob{{Digest: d, Size: 3 << 20}},
		Uploads:      []store.RemovedUpload{{ID: "0123", Repo: "app", Size: 10}},
		Files:        []store.RemovedFile{{Path: "uploads/0123", Size: 2}},
		Repositories: []string{"web"},
		Kept:         1,
	}
	dry := full
	dry.DryRun = true
	tests := []struct {
		name   string
		report store.GCReport
		want   string
	}{
		{"Empty", store.GCReport{}, "gc: removed 0 manifests, 0 links, 0 blobs, 0 uploads, 0 orphan files, 0 empty repositories; 0 B freed\n"},
		{"Full", full, "removed manifest app@" + string(d) + " (1.5 KiB)\n" +
			"removed link app → " + string(d) + "\n" +
			"removed link web → " + string(d) + "\n" +
			"removed blob " + string(d) + " (3.0 MiB)\n" +
			"removed upload 0123 of app (10 B)\n" +
			"removed file uploads/0123 (2 B)\n" +
			"removed empty repository web\n" +
			"kept 1 item that changed while gc ran\n" +
			"gc: removed 1 manifest, 2 links, 1 blob, 1 upload, 1 orphan file, 1 empty repository; 3.0 MiB freed\n"},
		{"DryRun", dry, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteGCReport(&b, tc.report); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if tc.report.DryRun {
				// The dry run says the same with other verbs.
				var full bytes.Buffer
				WriteGCReport(&full, func() store.GCReport { r := tc.report; r.DryRun = false; return r }())
				want = strings.ReplaceAll(strings.ReplaceAll(full.String(), "removed", "would remove"), "freed", "to free")
			}
			if b.String() != want {
				t.Fatalf("report %+v printed\n%s\nwant\n%s", tc.report, b.String(), want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{100 << 10, "100 KiB"}, {(1 << 20) - 1, "1024 KiB"}, {5 << 30, "5.0 GiB"}, {1 << 62, "4.0 EiB"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			if got := HumanBytes(tc.in); got != tc.want {
				t.Fatalf("HumanBytes(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestGC_Progress(t *testing.T) {
	tests := []struct {
		name     string
		progress bool
		bar      bool
	}{
		{"Terminal", true, true},
		{"NotTerminal", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.Open(t, t.TempDir())
			storetest.PushImage(t, s, "app", "", nil, "layer")
			s.Close()
			var out, errOut bytes.Buffer
			err := Call(context.Background(), s.Dir(), GCOp, GC{}, Stdio{Out: &out, Err: &errOut, Progress: tc.progress})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(errOut.String(), "gc plan"); got != tc.bar {
				t.Fatalf("progress %v: stderr %q", tc.progress, errOut.String())
			}
			if !strings.HasPrefix(lastLine(out.String()), "gc: removed 1 manifest") {
				t.Fatalf("stdout %q", out.String())
			}
		})
	}
}

func TestGC_LogsInServer(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	var logs storetest.SyncBuffer
	env := &Env{Store: s, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := GCOp.run(context.Background(), env, &Task{}, GCOp.Defaults); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "msg=\"gc run\"") {
		t.Fatalf("no log line for the run: %q", logs.String())
	}
}

func TestRunGCLoop(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	storetest.PushImage(t, s, "app", "", nil, "layer")
	var logs storetest.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		RunGCLoop(ctx, s, 5*time.Millisecond, store.GCOptions{Grace: store.NoAge}, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "scheduled gc run") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 scheduled runs logged in 10s:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "manifests=1") {
		t.Fatalf("no run removed the untagged manifest:\n%s", logs.String())
	}
	t.Run("NonPositiveIntervalReturns", func(t *testing.T) {
		RunGCLoop(context.Background(), s, 0, store.GCOptions{}, nil)
	})
}
