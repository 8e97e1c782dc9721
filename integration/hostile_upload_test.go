package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
)

// TestHostile_CutOffRequests: a PUT or PATCH whose client hangs up before
// its Content-Length keeps the session at what arrived, and the client
// resumes from there, instead of the session being lost (the body used to
// read as cleanly ended, the digest failed, and the session was deleted).
func TestHostile_CutOffRequests(t *testing.T) {
	s := startRegistry(t, "")
	content := seededBytes(71, 1<<20+100<<10)
	for _, method := range []string{http.MethodPut, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			repo := "cut/" + strings.ToLower(method)
			loc := s.startUpload(t, repo)
			r := s.do(t, http.MethodPatch, loc, content[:1<<20], "Content-Range", contentRange(0, 1<<20))
			wantStatus(t, r, http.StatusAccepted)
			loc = r.Header.Get("Location")
			target := loc
			if method == http.MethodPut {
				target = withQuery(loc, "digest", sha256Digest(content))
			}
			c := dialRaw(t, s)
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: %s\r\nContent-Length: %d\r\n\r\n",
				method, target, contentRange(1<<20, len(content)), 100<<10)
			c.Write(content[1<<20 : 1<<20+50<<10])
			c.Close()
			var offset int
			if !waitFor(5*time.Second, func() bool { offset = s.uploadOffset(t, loc); return offset > 1<<20 }) {
				t.Fatalf("session holds %d bytes after a cut-off %s, want the 1 MiB chunk and the 50 KiB that arrived", offset, method)
			}
			if offset > 1<<20+50<<10 {
				t.Fatalf("session holds %d bytes, more than was sent", offset)
			}
			finishUpload(t, s, repo, loc, content, offset)
		})
	}
}

// TestHostile_UploadSessions: sessions idle past --upload-ttl are removed
// by the server without gc, and one account (here, one address under
// --auth none) cannot open more than --max-uploads-per-user.
func TestHostile_UploadSessions(t *testing.T) {
	t.Run("expire", func(t *testing.T) {
		// The TTL must outlast the POST and PATCH below on a loaded
		// machine: with 2s a stall between them expired the session before
		// its first chunk, and the PATCH read 404.
		s := startRegistry(t, "", "--upload-ttl", "4s")
		loc := s.startUpload(t, "expire/me")
		wantStatus(t, s.do(t, http.MethodPatch, loc, []byte("some bytes"), "Content-Range", contentRange(0, 10)), http.StatusAccepted)
		var r reply
		if !waitFor(15*time.Second, func() bool { r = s.do(t, http.MethodGet, loc, nil); return r.Status == http.StatusNotFound }) {
			t.Fatalf("an idle session is still there 15s past a 4s --upload-ttl: %s", r)
		}
		wantError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		// The record goes first, the file right after its commit, and the
		// log line once the sweep returns: wait for those too.
		var entries []os.DirEntry
		var err error
		if !waitFor(5*time.Second, func() bool {
			entries, err = os.ReadDir(filepath.Join(s.Data, "uploads"))
			return err == nil && len(entries) == 0
		}) {
			t.Errorf("uploads/ holds %d files 5s after the session expired (%v)", len(entries), err)
		}
		if !waitFor(5*time.Second, func() bool { return len(s.logLines("expired idle uploads")) > 0 }) {
			t.Errorf("the expiry was not logged")
		}
	})
	t.Run("cap per user", func(t *testing.T) {
		s := startRegistry(t, "", "--max-uploads-per-user", "3")
		var locs []string
		for range 3 {
			locs = append(locs, s.startUpload(t, "capped/repo"))
		}
		over := s.do(t, http.MethodPost, "/v2/capped/repo/blobs/uploads/", nil)
		e := wantError(t, over, http.StatusTooManyRequests, "TOOMANYREQUESTS")
		if !strings.Contains(e.Message, "upload sessions") {
			t.Errorf("message %q does not say what is exceeded", e.Message)
		}
		// Finishing or cancelling one frees a place.
		wantStatus(t, s.do(t, http.MethodDelete, locs[0], nil), http.StatusNoContent)
		s.startUpload(t, "capped/repo")
		finishUpload(t, s, "capped/repo", locs[1], []byte("done"), 0)
		loc := s.startUpload(t, "capped/other")
		// A monolithic upload opens no session: never capped.
		s.pushBlob(t, "capped/repo", []byte("monolithic"))
		wantStatus(t, s.do(t, http.MethodDelete, loc, nil), http.StatusNoContent)
	})
}

// mountTmpfs mounts a tmpfs of size bytes on a new temp dir, unmounted when
// the test ends. Outside CI, it skips where mount is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	fixtures.RequireTool(t, "mount")
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("mount tmpfs (CI runs as root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v: %s); run as root to test a full disk", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestHostile_DiskFull fills a 64 MiB data dir: the client reads 507 with
// a message naming the cause, the failed chunk's bytes are gone at once,
// and once space is freed the same session and the server carry on.
func TestHostile_DiskFull(t *testing.T) {
	data := mountTmpfs(t, "64m")
	s := startRegistry(t, data)
	big := seededBytes(81, 80<<20)
	uploadBytes := func() int64 {
		var n int64
		entries, _ := os.ReadDir(filepath.Join(data, "uploads"))
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return n
	}

	t.Run("chunk", func(t *testing.T) {
		loc := s.startUpload(t, "full/chunk")
		r := s.do(t, http.MethodPatch, loc, big[:1<<20], "Content-Range", contentRange(0, 1<<20))
		wantStatus(t, r, http.StatusAccepted)
		loc = r.Header.Get("Location")
		r = s.do(t, http.MethodPatch, loc, big[1<<20:], "Content-Range", contentRange(1<<20, len(big)))
		e := wantError(t, r, http.StatusInsufficientStorage, "DENIED")
		if !strings.Contains(e.Message, "no space left") {
			t.Errorf("message %q does not name the cause", e.Message)
		}
		if n := uploadBytes(); n > 1<<20 {
			t.Errorf("uploads/ holds %d bytes after the failed chunk, want only the 1 MiB acknowledged", n)
		}
		if got := s.uploadOffset(t, loc); got != 1<<20 {
			t.Errorf("session at %d after the failed chunk, want %d", got, 1<<20)
		}
		// The rest fits once it is smaller: the session resumes.
		finishUpload(t, s, "full/chunk", loc, big[:2<<20], 1<<20)
	})
	t.Run("monolithic", func(t *testing.T) {
		r := s.do(t, http.MethodPost, "/v2/full/mono/blobs/uploads/?digest="+sha256Digest(big), big)
		wantError(t, r, http.StatusInsufficientStorage, "DENIED")
		if n := uploadBytes(); n != 0 {
			t.Errorf("uploads/ holds %d bytes after the failed upload, want 0", n)
		}
	})
	if len(s.logLines("no space left on device")) == 0 {
		t.Errorf("the full disk is not in the server's log")
	}
	s.pushRawImage(t, "full/after", "v1", 82, 1<<20)
}

// pushBigReferrers pushes n artifacts whose manifests carry annotations of
// about size bytes each, all referring to subject, and returns their
// digests.
func pushBigReferrers(t *testing.T, s *server, repo, subject string, n, size int) map[string]bool {
	t.Helper()
	empty := descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: s.pushBlob(t, repo, []byte("{}")), Size: 2}
	want := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		body, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     mediaTypeOCIManifest,
			"artifactType":  "application/vnd.example.big",
			"config":        empty,
			"layers":        []descriptor{empty},
			"subject":       descriptor{MediaType: mediaTypeOCIManifest, Digest: subject, Size: 0},
			"annotations":   map[string]string{"filler": strings.Repeat(strconv.Itoa(i%10), size)},
		})
		if err != nil {
			t.Fatal(err)
		}
		d := sha256Digest(body)
		want[d] = true
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.try(t.Context(), http.MethodPut, "/v2/"+repo+"/manifests/"+d, body, "Content-Type", mediaTypeOCIManifest)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || r.Status != http.StatusCreated {
				t.Errorf("push referrer %d: %v %v", i, r, err)
			}
		})
	}
	wg.Wait()
	return want
}

// TestHostile_BigReferrers: 40 referrers of ~3.9 MB each, then 6 clients
// list them at once. The answer comes in pages bounded in bytes, linked by
// Link, every referrer exactly once, and the server's memory stays bounded
// (it reached 4.76 GB when each answer was built whole).
func TestHostile_BigReferrers(t *testing.T) {
	s := startRegistry(t, "")
	img := s.pushRawImage(t, "refs/big", "v1", 61, 1024)
	const count, size, clients = 40, 3900 << 10, 6
	want := pushBigReferrers(t, s, "refs/big", img.Digest, count, size)
	resetPeakRSS(t, s)
	before := procStatusKiB(t, s, "VmRSS")

	var wg sync.WaitGroup
	results := make([]error, clients)
	for i := range clients {
		wg.Go(func() { results[i] = listAllReferrers(s, "/v2/refs/big/referrers/"+img.Digest, want) })
	}
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	peak := procStatusKiB(t, s, "VmHWM")
	t.Logf("referrers: %d of %d KiB, %d clients at once: server RSS %d MiB before, peak %d MiB", count, size>>10, clients, before>>10, peak>>10)
	// The bound is on what the listing adds, not on the total: the total
	// includes the heap the 156 MB of pushes left behind, which the Go
	// collector returns at its own pace and which swings with the machine's
	// load. Six clients with pages of at most 4 MiB need a few MiB each;
	// building the answers whole took gigabytes.
	const maxGrowthMiB = 128
	if growth := (peak - before) >> 10; growth > maxGrowthMiB {
		t.Errorf("server RSS grew by %d MiB (%d to %d MiB) while listing referrers, want under %d MiB", growth, before>>10, peak>>10, maxGrowthMiB)
	}
}

// listAllReferrers follows the Link pages of path and checks that they
// list exactly want, each page a valid index of at most 4 MiB of
// annotations plus one referrer.
func listAllReferrers(s *server, path string, want map[string]bool) error {
	seen := make(map[string]bool)
	for pages := 0; path != ""; pages++ {
		if pages > len(want) {
			return fmt.Errorf("more pages than referrers: the Link chain does not end")
		}
		resp, err := http.Get(s.URL(path))
		if err != nil {
			return err
		}
		var idx struct {
			MediaType string       `json:"mediaType"`
			Manifests []descriptor `json:"manifests"`
		}
		err = json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&idx)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || idx.MediaType != mediaTypeOCIIndex {
			return fmt.Errorf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		if len(idx.Manifests) > 2 {
			return fmt.Errorf("GET %s: %d referrers of ~3.9 MB in one page, want the page bounded in bytes", path, len(idx.Manifests))
		}
		for _, m := range idx.Manifests {
			if seen[m.Digest] || !want[m.Digest] {
				return fmt.Errorf("GET %s: %s listed twice or not a referrer", path, m.Digest)
			}
			seen[m.Digest] = true
		}
		next, ok := parseNextLink(resp.Header.Get("Link"))
		if resp.Header.Get("Link") != "" && !ok {
			return fmt.Errorf("GET %s: bad Link %q", path, resp.Header.Get("Link"))
		}
		path = next
	}
	if len(seen) != len(want) {
		return fmt.Errorf("the pages list %d referrers, want %d", len(seen), len(want))
	}
	return nil
}
