package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/store"
)

// pushImage stores an image (config + layers) in repo through the store,
// tagged when tag is not empty, and returns its manifest digest.
func pushImage(t *testing.T, s *store.Store, repo, tag string, layers ...string) store.Digest {
	t.Helper()
	type desc struct {
		MediaType string       `json:"mediaType"`
		Digest    store.Digest `json:"digest"`
		Size      int          `json:"size"`
	}
	put := func(content string) desc {
		d := store.DigestOf(store.SHA256, []byte(content))
		if _, err := s.PutBlob(repo, d, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
		return desc{"application/vnd.oci.image.layer.v1.tar", d, len(content)}
	}
	config := put(fmt.Sprintf(`{"repo":%q,"tag":%q}`, repo, tag))
	config.MediaType = "application/vnd.oci.image.config.v1+json"
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, store.MediaTypeOCIManifest, config, []desc{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, put(l))
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ref := store.Reference{Tag: tag}
	if tag == "" {
		ref = store.Reference{Digest: store.DigestOf(store.SHA256, body)}
	}
	stored, _, err := s.PutManifest(repo, ref, nil, m.MediaType, body)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	return stored.Digest
}

// fillTwin gives both directories of tw the same content: two repositories
// sharing a layer, an untagged image, a loose blob and an orphan file.
func fillTwin(t *testing.T, tw *twin) {
	t.Helper()
	fill := func(s *store.Store) {
		pushImage(t, s, "app", "v1", "shared layer", "app layer")
		pushImage(t, s, "app", "", "shared layer", "old app layer")
		pushImage(t, s, "tools", "latest", "shared layer")
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
	noGrace := map[string]string{"grace": "0s"}
	dry := tw.run(t, "gc", Args{Flags: map[string]string{"grace": "0s", "dry-run": "true"}}, "")
	if dry.err != "" {
		t.Fatal(dry)
	}
	again := tw.run(t, "gc", Args{Flags: map[string]string{"grace": "0s", "dry-run": "true"}}, "")
	if again != dry {
		t.Fatalf("a second dry run differs, so the first changed something:\n%s\n%s", dry, again)
	}
	done := tw.run(t, "gc", Args{Flags: noGrace}, "")
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
	if after := tw.run(t, "gc", Args{Flags: noGrace}, ""); lastLine(after.out) != "gc: removed 0 manifests, 0 links, 0 blobs, 0 uploads, 0 orphan files, 0 empty repositories; 0 B freed" {
		t.Fatalf("a second gc still found something:\n%s", after)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestGC_Flags(t *testing.T) {
	tests := []struct {
		name  string
		flags map[string]string
		want  store.GCOptions
		err   string
	}{
		{"Defaults", nil, store.GCOptions{}, ""},
		{"Everything", map[string]string{"dry-run": "true", "keep-untagged": "true", "grace": "90m", "upload-ttl": "2h"},
			store.GCOptions{DryRun: true, KeepUntagged: true, Grace: 90 * time.Minute, UploadTTL: 2 * time.Hour}, ""},
		{"ZeroIsNoAge", map[string]string{"grace": "0s", "upload-ttl": "0s"}, store.GCOptions{Grace: store.NoAge, UploadTTL: store.NoAge}, ""},
		{"NegativeGrace", map[string]string{"grace": "-1h"}, store.GCOptions{}, "--grace: -1h is negative"},
		{"BadDuration", map[string]string{"upload-ttl": "a day"}, store.GCOptions{}, `--upload-ttl: "a day" is not a duration`},
		{"BadBool", map[string]string{"dry-run": "maybe"}, store.GCOptions{}, `--dry-run: "maybe" is not true or false`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gcOptions(Args{Flags: tc.flags})
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("flags %v: error %v, want %q", tc.flags, err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("flags %v: got %+v, %v; want %+v", tc.flags, got, err, tc.want)
			}
		})
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
		progress string
		bar      bool
	}{
		{"Terminal", "true", true},
		{"NotTerminal", "false", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, t.TempDir())
			pushImage(t, s, "app", "", "layer")
			var out, errOut bytes.Buffer
			err := runGC(context.Background(), &Env{Store: s}, Args{Flags: map[string]string{"grace": "0s", "progress": tc.progress}}, Stdio{Out: &out, Err: &errOut})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(errOut.String(), "gc plan"); got != tc.bar {
				t.Fatalf("progress %s: stderr %q", tc.progress, errOut.String())
			}
			if !strings.HasPrefix(lastLine(out.String()), "gc: removed 1 manifest") {
				t.Fatalf("stdout %q", out.String())
			}
		})
	}
}

func TestGC_LogsInServer(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	var logs logBuffer
	env := &Env{Store: s, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := runGC(context.Background(), env, Args{}, Stdio{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "msg=\"gc run\"") {
		t.Fatalf("no log line for the run: %q", logs.String())
	}
}

func TestRunGCLoop(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	pushImage(t, s, "app", "", "layer")
	var logs logBuffer
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

// logBuffer collects log lines from one goroutine while another reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
