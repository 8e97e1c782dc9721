package integration

// Garbage collection against the real binary: pushes racing GC runs through
// the control socket, GC killed mid-run, and the same output from a stopped
// and a serving registry.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/store"
)

// TestGC_StressWithPushes has several clients push images with shared
// layers, delete tags and push again, while `berth gc --grace 0s` runs in a
// loop through the control socket. With no grace, a run may take a layer
// between its upload and the manifest; the manifest PUT then answers
// MANIFEST_BLOB_UNKNOWN and the client pushes again. Afterwards every
// acknowledged tag must pull with every layer intact, the store must be
// consistent, and a final GC must leave exactly what the tags use.
func TestGC_StressWithPushes(t *testing.T) {
	s := startServer(t, "")
	const clients, rounds, maxGCRuns = 4, 10, 300
	shared := make([]v1.Layer, 3)
	for i := range shared {
		shared[i] = mustLayer(t, 2048)
	}

	pushing := make(chan struct{})
	gcErrs := make(chan error, 1)
	gcRuns := 0
	go func() {
		defer close(gcErrs)
		for ; gcRuns < maxGCRuns; gcRuns++ {
			select {
			case <-pushing:
				return
			default:
			}
			out, errOut, err := runBerth(t, t.Context(), nil, "gc", "--data", s.Data, "--grace", "0s")
			if err != nil || !strings.Contains(out, "gc: removed") {
				gcErrs <- fmt.Errorf("gc run %d: %v\nstdout:\n%s\nstderr:\n%s", gcRuns, err, out, errOut)
				return
			}
		}
	}()

	acked := make([]map[string]v1.Image, clients) // per client: tag → image
	var retries atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		acked[c] = map[string]v1.Image{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("stress/client%d", c)
			var previous v1.Image
			for r := range rounds {
				img := mustImage(t, shared[r%3], shared[(r+1)%3], mustLayer(t, 512))
				tag := fmt.Sprintf("t%d", r%2)
				if !pushAcked(t, s, repo+":"+tag, img, &retries) {
					return
				}
				acked[c][tag] = img
				if previous != nil && r%3 == 2 {
					// Push an earlier image again, under a new tag: its
					// untagged blobs may be half gone by now.
					if !pushAcked(t, s, repo+":again", previous, &retries) {
						return
					}
					acked[c]["again"] = previous
				}
				if r%3 == 1 {
					if err := remote.Delete(s.ref(t, repo+":"+tag), remoteOptions(t)...); err != nil {
						t.Errorf("delete %s:%s: %v", repo, tag, err)
					}
					delete(acked[c], tag)
				}
				previous = img
			}
		}()
	}
	wg.Wait()
	close(pushing)
	if err := <-gcErrs; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d gc runs overlapped the pushes; %d manifest puts were refused with MANIFEST_BLOB_UNKNOWN and pushed again", gcRuns, retries.Load())
	if gcRuns == 0 {
		t.Fatal("no gc run overlapped the pushes")
	}

	want := map[string]bool{} // blob digests the acknowledged tags use
	for c, tags := range acked {
		for tag, img := range tags {
			ref := fmt.Sprintf("stress/client%d:%s", c, tag)
			pullAndValidate(t, s, ref, img)
			for _, d := range imageBlobs(t, img) {
				want[d] = true
			}
		}
	}
	if t.Failed() {
		return
	}
	// Killed, not stopped: every push and GC run has returned, and a
	// graceful stop can wait minutes for the clients' keep-alive connections
	// (reported; not what this test is about).
	s.kill()
	checkStore(t, s.Data)
	if out, errOut, err := runBerth(t, t.Context(), nil, "gc", "--data", s.Data, "--grace", "0s"); err != nil {
		t.Fatalf("final gc: %v\n%s%s", err, out, errOut)
	}
	checkStore(t, s.Data)
	if got := blobFiles(t, s.Data); len(got) != len(want) {
		t.Fatalf("after a final gc %d blob files remain; the acknowledged tags use %d", len(got), len(want))
	}
}

// pushAcked pushes img to ref, again while the registry answers
// MANIFEST_BLOB_UNKNOWN, and reports whether the push was acknowledged.
// retries counts the refused attempts.
func pushAcked(t *testing.T, s *server, ref string, img v1.Image, retries *atomic.Int64) bool {
	for attempt := 1; ; attempt++ {
		err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...)
		if err == nil {
			return true
		}
		var terr *transport.Error
		if !errors.As(err, &terr) || len(terr.Errors) == 0 || terr.Errors[0].Code != transport.ManifestBlobUnknownErrorCode {
			t.Errorf("push %s: %v", ref, err)
			return false
		}
		retries.Add(1)
		if attempt == 30 {
			t.Errorf("push %s: MANIFEST_BLOB_UNKNOWN 30 times in a row", ref)
			return false
		}
	}
}

func pullAndValidate(t *testing.T, s *server, ref string, want v1.Image) {
	t.Helper()
	got, err := remote.Image(s.ref(t, ref), remoteOptions(t)...)
	if err != nil {
		t.Errorf("pull acknowledged %s: %v", ref, err)
		return
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate %s: %v", ref, err)
	}
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Errorf("%s is %s, want the acknowledged %s", ref, gd, wd)
	}
}

func mustLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustImage(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageBlobs returns the config and layer digests of img.
func imageBlobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{cfg.String()}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

// checkStore opens the stopped registry's data directory and fails the
// test unless meta.db passes bbolt's check and the records agree with each
// other and with the blob files.
func checkStore(t *testing.T, data string) {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", data, err)
	}
	defer st.Close()
	if err := st.CheckPages(); err != nil {
		t.Fatalf("meta.db check: %v", err)
	}
	faults, err := st.CheckConsistency()
	if err != nil || len(faults) > 0 {
		t.Fatalf("store inconsistent (%v):\n%s", err, strings.Join(faults, "\n"))
	}
}

// blobFiles lists the files under DATA/blobs, relative to it.
func blobFiles(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(data, "blobs")
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fillStore writes images straight through the store (the server stopped):
// tagged ones in repository "keep", untagged ones in "drop". Every image has
// a layer of its own and one shared with all others; batch makes the
// untagged ones differ from those of another call.
func fillStore(t *testing.T, data string, tagged, untagged int, batch string) {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(repo, content string) map[string]any {
		d := store.DigestOf(store.SHA256, []byte(content))
		if _, err := st.PutBlob(repo, d, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(content)}
	}
	for i := range tagged + untagged {
		repo, tag := "keep", fmt.Sprintf("v%d", i)
		if i >= tagged {
			repo, tag = "drop", ""
		}
		own := fmt.Sprintf("%d", i)
		if i >= tagged {
			own = batch + "/" + own
		}
		config := put(repo, fmt.Sprintf(`{"image":%q}`, own))
		config["mediaType"] = "application/vnd.oci.image.config.v1+json"
		body, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": store.MediaTypeOCIManifest, "config": config,
			"layers": []any{put(repo, "shared layer"), put(repo, "layer "+own)},
		})
		ref := store.Reference{Tag: tag}
		if tag == "" {
			ref = store.Reference{Digest: store.DigestOf(store.SHA256, body)}
		}
		if _, _, err := st.PutManifest(repo, ref, nil, store.MediaTypeOCIManifest, body); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGC_KilledMidRun kills GC at fractions of the time a whole run takes,
// alternately the CLI process running it on a stopped registry and the
// server running it for the socket, each time on fresh garbage, and checks
// the store after every kill. Whatever point the
// kill hits, the store must be consistent, and a last GC must finish the
// job without touching the tagged images.
func TestGC_KilledMidRun(t *testing.T) {
	data := t.TempDir()
	// untagged is enough garbage for three batches of the blob sweep
	// (store's gcBatch is 500): a kill after the first lands mid-sweep.
	const tagged, untagged = 10, 550
	fillStore(t, data, tagged, 0, "")
	// Time one whole run, so the kills of a stopped registry's gc can land
	// at fractions of it.
	fillStore(t, data, 0, untagged, "timing")
	start := time.Now()
	if out, errOut, err := runBerth(t, t.Context(), nil, "gc", "--data", data, "--grace", "0s"); err != nil {
		t.Fatalf("gc: %v\n%s%s", err, out, errOut)
	}
	whole := time.Since(start)
	const kills = 4
	interrupted, mustInterrupt := 0, 0
	for i := range kills {
		fillStore(t, data, 0, untagged, fmt.Sprint(i)) // fresh garbage for this run
		before := len(blobFiles(t, data))
		if i%2 == 0 {
			// The gc process itself, killed at some moment of its run.
			delay := whole * time.Duration(i+1) / (kills + 1)
			cmd := exec.Command(berthBin, "gc", "--data", data, "--grace", "0s")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
			cmd.Wait()
			timer.Stop()
		} else {
			// The server, killed the moment its gc reports the first batch
			// of blobs removed: certainly mid-sweep.
			mustInterrupt++
			s := startServer(t, data)
			killOnProgress(t, data, "blobs", s.kill)
		}
		checkStore(t, data)
		if after := len(blobFiles(t, data)); after < before && after > 2*tagged+1 {
			interrupted++
		} else if i%2 == 1 {
			t.Errorf("kill %d: %d blob files before, %d after: the kill did not land mid-sweep", i, before, after)
		}
	}
	t.Logf("a whole run took %v; %d of %d kills interrupted one that had removed some blobs and not all (%d had to)", whole, interrupted, kills, mustInterrupt)
	if interrupted < mustInterrupt {
		t.Fatalf("only %d kills interrupted a sweep, want at least %d: the test showed nothing", interrupted, mustInterrupt)
	}
	if out, errOut, err := runBerth(t, t.Context(), nil, "gc", "--data", data, "--grace", "0s"); err != nil {
		t.Fatalf("gc after the kills: %v\n%s%s", err, out, errOut)
	}
	checkStore(t, data)
	// Each tagged image: a config and a layer of its own, and the shared layer.
	if got, want := len(blobFiles(t, data)), 2*tagged+1; got != want {
		t.Fatalf("%d blob files remain, want %d", got, want)
	}
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range tagged {
		m, err := st.Manifest("keep", store.Reference{Tag: fmt.Sprintf("v%d", i)})
		if err != nil {
			t.Fatalf("keep:v%d: %v", i, err)
		}
		var body struct {
			Layers []struct{ Digest store.Digest }
		}
		json.Unmarshal(m.Body, &body)
		for _, l := range body.Layers {
			f, _, err := st.OpenBlob(context.Background(), "keep", l.Digest, 0, -1)
			if err != nil {
				t.Fatalf("keep:v%d layer %s: %v", i, l.Digest, err)
			}
			b, _ := io.ReadAll(f)
			f.Close()
			if store.DigestOf(store.SHA256, b) != l.Digest {
				t.Fatalf("keep:v%d layer %s reads back wrong", i, l.Digest)
			}
		}
	}
}

// TestGC_SameOutputStoppedAndServing runs the same GC on two copies of one
// data directory, one with the server stopped and one through the socket
// of a running server; a dry run first, which must change nothing.
func TestGC_SameOutputStoppedAndServing(t *testing.T) {
	stopped, serving := t.TempDir(), t.TempDir()
	fillStore(t, stopped, 2, 3, "")
	orphan := filepath.Join(stopped, "blobs", "sha256", "ab", "ab"+strings.Repeat("0", 62))
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	if err := os.WriteFile(orphan, []byte("orphan"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyDir(t, stopped, serving)

	gc := func(data string, extra ...string) string {
		t.Helper()
		out, errOut, err := runBerth(t, t.Context(), nil, append([]string{"gc", "--data", data, "--grace", "0s"}, extra...)...)
		if err != nil {
			t.Fatalf("gc %q: %v\n%s%s", extra, err, out, errOut)
		}
		return out
	}
	du := func(data string) string {
		t.Helper()
		out, errOut, err := runBerth(t, t.Context(), nil, "du", "--data", data, "--json")
		if err != nil {
			t.Fatalf("du: %v\n%s", err, errOut)
		}
		return out
	}

	beforeFiles, beforeDU := blobFiles(t, stopped), du(stopped)
	dry := gc(stopped, "--dry-run")
	if files, usage := blobFiles(t, stopped), du(stopped); strings.Join(files, " ") != strings.Join(beforeFiles, " ") || usage != beforeDU {
		t.Fatalf("the dry run changed the store:\nfiles before %v\nafter %v\ndu before %s\nafter %s", beforeFiles, files, beforeDU, usage)
	}
	if !strings.Contains(dry, "would remove 3 manifests, 7 links, 6 blobs, 0 uploads, 1 orphan file, 1 empty repository") {
		t.Fatalf("dry run:\n%s", dry)
	}
	local := gc(stopped)
	if want := strings.ReplaceAll(strings.ReplaceAll(dry, "would remove", "removed"), "to free", "freed"); local != want {
		t.Fatalf("gc did other than its dry run said:\ndry run:\n%s\ngc:\n%s", dry, local)
	}

	s := startServer(t, serving)
	remote := gc(serving)
	if remote != local {
		t.Fatalf("gc output differs:\nserver stopped:\n%s\nthrough the socket:\n%s", local, remote)
	}
	if len(s.logLines(`msg="gc run"`)) != 1 {
		t.Fatalf("the server did not log the run:\n%s", s.Log())
	}
	if a, b := du(stopped), du(serving); a != b {
		t.Fatalf("du differs after the same gc:\n%s\n%s", a, b)
	}
}

// TestGC_Scheduled checks that serve --gc-interval runs GC and logs it.
func TestGC_Scheduled(t *testing.T) {
	data := t.TempDir()
	fillStore(t, data, 1, 1, "")
	s := startServer(t, data, "--gc-interval", "50ms")
	deadline := time.Now().Add(15 * time.Second)
	for len(s.logLines(`msg="scheduled gc run"`)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled gc run logged in 15s:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// copyDir copies the regular files of src into dst, keeping modes and
// modification times.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(target, info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// killOnProgress runs gc with no grace through the control socket of the
// server serving data, asking for progress, and calls kill as soon as the
// server reports progress in phase (after the first batch of it), before
// the run can finish. It fails the test when the run ends first.
func killOnProgress(t *testing.T, data, phase string, kill func()) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(data, "control.sock"))
	}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://berth/admin/v1/gc?progress=1", strings.NewReader(`{"grace":0}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Berth-Admin-Protocol", "2")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e struct {
			Progress *struct {
				Phase       string
				Done, Total int64
			}
			Done bool
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("control socket event %q: %v", sc.Bytes(), err)
		}
		if e.Done {
			t.Fatalf("gc finished before it reported %s progress", phase)
		}
		if p := e.Progress; p != nil && p.Phase == phase && p.Done > 0 && p.Done < p.Total {
			kill()
			return
		}
	}
	t.Fatalf("the control connection ended before any %s progress: %v", phase, sc.Err())
}
