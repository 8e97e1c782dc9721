package integration

// Backup, restore and verify against the real binary: a hot backup while
// clients push and GC runs, restored and served; an incremental; a store
// broken on purpose, repaired, and healed by re-pushing.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// TestBackup_RoundTrip backs up a serving registry while two clients push
// and delete and GC runs with no grace period, restores the backup into an
// empty directory, serves it and pulls every image the snapshot holds with
// the digests they were pushed with. Then, after more pushes, an
// incremental: the full backup and it restore to exactly the live store.
func TestBackup_RoundTrip(t *testing.T) {
	s := startRegistry(t, "")
	pushed := pushBackupSet(t, s)
	work := t.TempDir()
	full := filepath.Join(work, "full.tar.zst")

	stopBusy := busyRegistry(t, s)
	_, errOut, err := runBerth(t, t.Context(), nil, "backup", "--data", s.Data, "--output", full)
	stopBusy()
	if err != nil || !strings.Contains(errOut, "(full)") {
		t.Fatalf("backup while busy: %v\nstderr:\n%s", err, errOut)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 1 {
		t.Errorf("the backup left %d files beside it, want just the backup", len(entries))
	}

	restored := filepath.Join(t.TempDir(), "data")
	if out, errOut, err := runBerth(t, t.Context(), nil, "restore", "--data", restored, "--input", full); err != nil {
		t.Fatalf("restore: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	s2 := startRegistry(t, restored)
	for ref, want := range pushed {
		pullAndCheck(t, s2, ref, want)
	}
	// Whatever else the snapshot caught mid-push pulls whole too.
	for _, ref := range allTags(t, s2) {
		pullAndCheck(t, s2, ref, "")
	}
	if out, _, err := runBerth(t, t.Context(), nil, "verify", "--data", restored); err != nil || !strings.Contains(out, ": no faults") {
		t.Fatalf("verify of the restored store through its server: %v\n%s", err, out)
	}
	stopRegistry(t, s2)

	// More pushes, then an incremental. Nothing runs meanwhile, so the live
	// store is what it snapshots.
	more := mustImage(t, mustLayer(t, 100<<10), mustLayer(t, 512))
	if err := remote.Write(s.ref(t, "app/more:v1"), more, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(work, "inc.tar.zst")
	_, errOut, err = runBerth(t, t.Context(), nil, "backup", "--data", s.Data, "--output", inc, "--incremental-from", full)
	if err != nil || !strings.Contains(errOut, "incremental after") {
		t.Fatalf("incremental backup: %v\nstderr:\n%s", err, errOut)
	}
	stopRegistry(t, s)
	both := filepath.Join(t.TempDir(), "data")
	if out, errOut, err := runBerth(t, t.Context(), nil, "restore", "--data", both, "--input", full, "--input", inc); err != nil {
		t.Fatalf("restore full + incremental: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	checkStore(t, both)
	if got, want := storetest.Dump(t, both), storetest.Dump(t, s.Data); got != want {
		t.Fatalf("full + incremental differs from the live store\nrestored:\n%s\nlive:\n%s", got, want)
	}
}

// stopRegistry stops s in the middle of a test, first closing the clients'
// idle connections, which its shutdown would wait for (startRegistry).
func stopRegistry(t *testing.T, s *server) {
	t.Helper()
	plainTransport.CloseIdleConnections()
	httpClient.CloseIdleConnections()
	s.stop(t)
}

// pushBackupSet pushes the images a backup must keep: the multi-arch and
// Docker list fixtures, an artifact with its subject, two images sharing a
// layer and one large enough that copying it takes a while. It returns
// each reference with its digest.
func pushBackupSet(t *testing.T, s *server) map[string]string {
	t.Helper()
	opts := remoteOptions(t, remote.WithReferrersTagFallback(false))
	pushed := map[string]string{}
	for _, l := range []struct{ layout, ref string }{
		{fixtures.Multiarch, "fix/multiarch:latest"}, {fixtures.DockerList, "fix/docker:latest"},
	} {
		idx, _ := fixtureIndex(t, l.layout, "latest")
		if err := remote.WriteIndex(s.ref(t, l.ref), idx, opts...); err != nil {
			t.Fatalf("push %s: %v", l.ref, err)
		}
		d, _ := idx.Digest()
		pushed[l.ref] = d.String()
	}
	base := mustLayer(t, 4096)
	for ref, img := range map[string]v1.Image{
		"fix/artifact:subject": fixtureImage(t, fixtures.Artifact, "subject"),
		"fix/artifact:sbom":    fixtureImage(t, fixtures.Artifact, "latest"),
		"app/a:v1":             mustImage(t, base, mustLayer(t, 8192)),
		"app/b:v1":             mustImage(t, base, mustLayer(t, 8192)),
		"app/big:v1":           mustImage(t, mustLayer(t, 16<<20)),
	} {
		if err := remote.Write(s.ref(t, ref), img, opts...); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, _ := img.Digest()
		pushed[ref] = d.String()
	}
	return pushed
}

// busyRegistry starts two clients that push, re-tag and delete images in a
// loop and a loop of `berth gc --grace 0s`, and waits until each has done
// some work. stop ends them and waits.
func busyRegistry(t *testing.T, s *server) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var pushes, gcs atomic.Int64
	started := make(chan struct{}, 3)
	var retries atomic.Int64
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shared := mustLayer(t, 2048)
			for r := 0; ; r++ {
				select {
				case <-done:
					return
				default:
				}
				ref := fmt.Sprintf("busy/c%d:r%d", c, r)
				if !pushAcked(t, s, ref, mustImage(t, shared, mustLayer(t, 4096)), &retries) {
					return
				}
				if r > 0 { // the previous tag goes, and GC takes its image
					old := s.ref(t, fmt.Sprintf("busy/c%d:r%d", c, r-1))
					if err := remote.Delete(old, remoteOptions(t)...); err != nil {
						t.Errorf("delete %s: %v", old, err)
						return
					}
				}
				if pushes.Add(1) == 2 {
					started <- struct{}{}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			out, errOut, err := runBerth(t, t.Context(), nil, "gc", "--data", s.Data, "--grace", "0s")
			if err != nil {
				t.Errorf("gc: %v\n%s%s", err, out, errOut)
				return
			}
			if gcs.Add(1) == 1 {
				started <- struct{}{}
			}
		}
	}()
	for range 2 {
		<-started
	}
	return func() {
		close(done)
		wg.Wait()
		t.Logf("while the backup ran: %d pushes, %d gc runs, %d pushes refused for a collected layer", pushes.Load(), gcs.Load(), retries.Load())
	}
}

// pullAndCheck pulls ref from s, validates every blob and manifest, and
// compares its digest with want when want is not empty.
func pullAndCheck(t *testing.T, s *server, ref, want string) {
	t.Helper()
	desc, err := remote.Get(s.ref(t, ref), remoteOptions(t)...)
	if err != nil {
		t.Errorf("pull %s: %v", ref, err)
		return
	}
	if want != "" && desc.Digest.String() != want {
		t.Errorf("%s is %s, want %s", ref, desc.Digest, want)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = validate.Index(idx)
		}
		if err != nil {
			t.Errorf("index %s: %v", ref, err)
		}
		return
	}
	img, err := desc.Image()
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Errorf("image %s: %v", ref, err)
	}
}

// allTags lists repo:tag for every tag of every repository s serves.
func allTags(t *testing.T, s *server) []string {
	t.Helper()
	reg, err := name.NewRegistry(s.Addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg, remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, repo := range repos {
		tags, err := remote.List(s.repoRef(t, repo), remoteOptions(t)...)
		if err != nil {
			t.Fatalf("tags of %s: %v", repo, err)
		}
		for _, tag := range tags {
			out = append(out, repo+":"+tag)
		}
	}
	return out
}

// TestVerify_RepairThenRepush breaks a stopped registry three ways — a
// flipped byte in a shared layer, a layer file gone, a tag whose manifest is
// not there — and serves it: verify names each fault with the images it
// breaks, --repair quarantines and forgets the broken blobs so the
// registry stops serving them, and a client re-pushing the images makes
// verify clean.
func TestVerify_RepairThenRepush(t *testing.T) {
	s := startRegistry(t, "")
	shared, own := mustLayer(t, 4096), mustLayer(t, 4096)
	x, y := mustImage(t, shared, own), mustImage(t, shared)
	for ref, img := range map[string]v1.Image{"app/x:v1": x, "app/y:v1": y} {
		if err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...); err != nil {
			t.Fatal(err)
		}
	}
	stopRegistry(t, s)
	sharedDigest, _ := shared.Digest()
	ownDigest, _ := own.Digest()
	flipFileByte(t, store.BlobPathIn(s.Data, store.Digest(sharedDigest.String())))
	if err := os.Remove(store.BlobPathIn(s.Data, store.Digest(ownDigest.String()))); err != nil {
		t.Fatal(err)
	}
	ghost := store.DigestOf(store.SHA256, []byte("a manifest nobody pushed"))
	putDanglingTag(t, s.Data, "app/x", "ghost", ghost)

	s = startRegistry(t, s.Data)
	out, _, err := runBerth(t, t.Context(), nil, "verify", "--data", s.Data)
	for _, want := range []string{
		"corrupt blob " + sharedDigest.String() + ": ", "  images: app/x:v1, app/y:v1\n",
		"missing blob " + ownDigest.String() + ": ", "  images: app/x:v1\n",
		"dangling tag app/x:ghost: points at " + string(ghost),
		": 3 faults\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q", want)
		}
	}
	if err == nil || t.Failed() {
		t.Fatalf("verify of the broken store: %v\n%s", err, out)
	}

	out, _, err = runBerth(t, t.Context(), nil, "verify", "--data", s.Data, "--repair")
	if err == nil || strings.Count(out, "  repaired: ") != 2 {
		t.Fatalf("verify --repair: %v\n%s", err, out)
	}
	// The registry no longer serves the corrupt bytes: the layer is unknown
	// until a push brings it back.
	for _, repo := range []string{"app/x", "app/y"} {
		wantError(t, s.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+sharedDigest.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
	}

	for ref, img := range map[string]v1.Image{"app/x:v1": x, "app/y:v1": y, "app/x:ghost": x} {
		if err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...); err != nil {
			t.Fatalf("re-push %s: %v", ref, err)
		}
	}
	out, _, err = runBerth(t, t.Context(), nil, "verify", "--data", s.Data)
	if err != nil || !strings.HasSuffix(out, ": no faults\n") {
		t.Fatalf("verify after the re-push: %v\n%s", err, out)
	}
	for _, ref := range []string{"app/x:v1", "app/y:v1", "app/x:ghost"} {
		pullAndCheck(t, s, ref, "")
	}
	quarantined, _ := filepath.Glob(filepath.Join(s.Data, "quarantine", "sha256", "*"))
	if want := []string{filepath.Join(s.Data, "quarantine", "sha256", sharedDigest.Hex)}; !slices.Equal(quarantined, want) {
		t.Errorf("quarantine holds %v, want %v", quarantined, want)
	}
}

func flipFileByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// putDanglingTag points repo:tag at d in the stopped store in data,
// writing the tags bucket (store/buckets.go) directly: nothing in the API
// can make a tag point at a manifest that is not there.
func putDanglingTag(t *testing.T, data, repo, tag string, d store.Digest) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(data, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("tags")).Put([]byte(repo+"\x00"+tag), []byte(d))
	})
	if err != nil {
		t.Fatal(err)
	}
}
