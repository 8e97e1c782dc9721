package integration

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// TestImport fills a distribution registry through its API, garbage-collects
// it, and imports its storage, an OCI layout tree made from it with skopeo,
// and the running registry over the API. The oracle: every tag and every
// revision pulls from the source and from berth with the same digest, media
// type and bytes; the signatures are referrers; blobs are hard links of the
// source's files; the source tree is byte-identical after.
func TestImport(t *testing.T) {
	src := startDistribution(t, "")
	set := fillDistribution(t, src, 4<<20)
	refs := sourceRefs(t, src)
	skip := map[string]bool{}
	for _, f := range set.fallback {
		skip[f] = true
	}
	t.Logf("source: %d refs, about %d blob bytes", len(refs), set.bytes)
	if hasString(refs, set.deletedTag) {
		t.Fatalf("the deleted tag %s is still listed by the source", set.deletedTag)
	}
	for _, want := range []string{"lib/alpine@" + set.untagged.String(), "lib/alpine@" + set.orasRef.String(), "team/app/web:v1", "skopeo/multi:latest", "docker/list:latest", "lib/multi:latest"} {
		if !hasString(refs, want) {
			t.Fatalf("the source lacks %s: %v", want, refs)
		}
	}
	before := hashTree(t, src.Root)

	t.Run("DryRunChangesNothing", func(t *testing.T) {
		data := t.TempDir()
		out := importCmd(t, data, 0, "registry2", src.Root, "--dry-run")
		if !strings.Contains(out, "would import") || !strings.Contains(out, "lib/alpine:") {
			t.Errorf("dry run output lacks the plan:\n%s", out)
		}
		if dump := storetest.Dump(t, data); strings.Contains(dump, "manifests ") || strings.Contains(dump, "tags ") || strings.Contains(dump, "links ") {
			t.Errorf("a dry run recorded something:\n%s", dump)
		}
		if n := countFiles(t, filepath.Join(data, "blobs")); n != 0 {
			t.Errorf("a dry run placed %d blob files", n)
		}
	})

	t.Run("Registry2LinkMode", func(t *testing.T) {
		data := t.TempDir()
		var before, after syscall.Statfs_t
		syscall.Statfs(data, &before)
		out := importCmd(t, data, 0, "registry2", src.Root)
		syscall.Statfs(data, &after)
		t.Logf("import output:\n%s", out)
		t.Logf("statfs: %d KiB used by the import (blob bytes in the source: about %d KiB; other processes share the filesystem)",
			(int64(before.Bfree)-int64(after.Bfree))*int64(before.Bsize)/1024, set.bytes/1024)
		wantLinkedBlobs(t, data, src.Root)
		b := startRegistry(t, data)
		wantSameManifests(t, src.Addr, b.Addr, refs, skip)
		wantReferrers(t, b, "lib/alpine", set.subject.String(), set.cosignSig.String(), set.orasRef.String())
		for _, tag := range berthTags(t, b.Addr, "lib/alpine") {
			if strings.HasPrefix(tag, "sha256-") {
				t.Errorf("fallback tag %s kept without --keep-fallback-tags", tag)
			}
		}
	})

	t.Run("KeepFallbackTagsAndOnly", func(t *testing.T) {
		data := t.TempDir()
		importCmd(t, data, 0, "registry2", src.Root, "--keep-fallback-tags", "--only", "lib/al*")
		b := startRegistry(t, data)
		tags := berthTags(t, b.Addr, "lib/alpine")
		for _, f := range set.fallback {
			if !hasString(tags, strings.TrimPrefix(f, "lib/alpine:")) {
				t.Errorf("--keep-fallback-tags: %s missing from %v", f, tags)
			}
		}
		if repos, _ := b.catalog(t, ""); len(repos) != 1 || repos[0] != "lib/alpine" {
			t.Errorf("--only lib/al*: catalog is %v, want [lib/alpine]", repos)
		}
	})

	t.Run("KillThenRerun", func(t *testing.T) {
		data := t.TempDir()
		cmd := exec.Command(berthBin, "import", "registry2", src.Root, "--data", data, "--copy", "--jobs", "1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := waitAndKill(t, cmd, func() bool { return countFiles(t, filepath.Join(data, "blobs")) > 0 })
		t.Logf("killed mid-import: %v (blob files placed then: %d)", killed, countFiles(t, filepath.Join(data, "blobs")))
		importCmd(t, data, 0, "registry2", src.Root, "--copy")
		if _, stderr, err := runBerth(t, t.Context(), nil, "verify", "--data", data); err != nil {
			t.Errorf("verify after the re-run: %v\n%s", err, stderr)
		}
		b := startRegistry(t, data)
		wantSameManifests(t, src.Addr, b.Addr, refs, skip)
	})

	t.Run("ThroughTheRunningServer", func(t *testing.T) {
		b := startRegistry(t, "")
		out := importCmd(t, b.Data, 0, "registry2", src.Root)
		if len(b.logLines("import")) == 0 {
			t.Errorf("the running server did not log the import; output:\n%s", out)
		}
		wantSameManifests(t, src.Addr, b.Addr, refs, skip)
		// Again: idempotent, everything already stored.
		out = importCmd(t, b.Data, 0, "registry2", src.Root)
		if !strings.Contains(out, " 0 linked, 0 copied") {
			t.Errorf("a second import placed blobs again:\n%s", out)
		}
		wantSameManifests(t, src.Addr, b.Addr, refs, skip)
	})

	t.Run("MissingAndCorruptBlobs", func(t *testing.T) {
		broken := copyTree(t, src.Root)
		layers := imageLayers(t, src, "lib/alpine:2")
		lost, flipped := layers[1], layers[0] // alpine:2's own layer gone, the shared one corrupt
		blob := func(d string) string {
			h := strings.TrimPrefix(d, "sha256:")
			return filepath.Join(broken, "docker/registry/v2/blobs/sha256", h[:2], h, "data")
		}
		if err := os.Remove(blob(lost)); err != nil {
			t.Fatal(err)
		}
		flipFileByte(t, blob(flipped))
		data := t.TempDir()
		out := importCmd(t, data, 1, "registry2", broken)
		for _, want := range []string{lost, flipped, "recorded as broken"} {
			if !strings.Contains(out, want) {
				t.Errorf("the report does not name %s:\n%s", want, out)
			}
		}
		b := startRegistry(t, data)
		for _, r := range []string{"lib/alpine:1", "lib/alpine:2"} {
			if _, err := getManifest(b, r); err == nil {
				t.Errorf("%s is served though content of it is missing", r)
			}
		}
		wantSameManifests(t, src.Addr, b.Addr, []string{"team/app/web:v1", "lib/multi:latest", "skopeo/multi:latest", "docker/list:latest"}, nil)
	})

	t.Run("OCILayouts", func(t *testing.T) {
		tree := t.TempDir()
		home := t.TempDir()
		for _, c := range []struct{ from, to string }{
			{"lib/multi:latest", "lib/multi:latest"}, {"lib/alpine:1", "lib/alpine:1"}, {"team/app/web:v1", "team/app/web:v1"},
		} {
			repo, tag, _ := strings.Cut(c.to, ":")
			os.MkdirAll(filepath.Join(tree, repo), 0o755)
			if out, err := skopeoRun(t, home, "", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
				"docker://"+src.Addr+"/"+c.from, "oci:"+filepath.Join(tree, repo)+":"+tag); err != nil {
				t.Fatalf("skopeo copy: %v\n%s", err, out)
			}
		}
		// zot's own files beside the layouts are skipped.
		os.WriteFile(filepath.Join(tree, "cache.db"), []byte("not a layout"), 0o644)
		os.MkdirAll(filepath.Join(tree, "lib", "multi", ".uploads"), 0o755)
		treeHash := hashTree(t, tree)
		data := t.TempDir()
		importCmd(t, data, 0, "oci", tree)
		single := t.TempDir()
		importCmd(t, single, 0, "oci", filepath.Join(tree, "lib", "alpine"), "--repo", "mirror/alpine")
		if hashTree(t, tree) != treeHash {
			t.Error("the OCI layouts changed during the import")
		}
		wantLinkedOCIBlobs(t, data, tree)
		b := startRegistry(t, data)
		wantSameManifests(t, src.Addr, b.Addr, []string{"lib/multi:latest", "lib/alpine:1", "team/app/web:v1"}, nil)
		s := startRegistry(t, single)
		want, err := getManifest(&server{Addr: src.Addr}, "lib/alpine:1")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := getManifest(s, "mirror/alpine:1"); err != nil || got != want {
			t.Errorf("single layout as mirror/alpine: %s, %v; want %s", got, err, want)
		}
	})

	t.Run("RemoteWithPasswordThroughTheSocket", func(t *testing.T) {
		// The source is a berth with token auth; the destination a running
		// berth, so the password crosses the control socket.
		source, password := startAuthServer(t, "")
		img := mustImage(t, mustLayer(t, 4096))
		if err := remote.Write(source.ref(t, "private/app:v1"), img, withAuth(t, "admin", password)...); err != nil {
			t.Fatal(err)
		}
		want, _ := img.Digest()
		b := startRegistry(t, "")
		out, stderr, err := runBerth(t, t.Context(), strings.NewReader(password+"\n"), "import", "remote",
			"http://"+source.Addr, "--user", "admin", "--password-stdin", "--data", b.Data)
		if err != nil {
			t.Fatalf("import from a berth with auth: %v\n%s%s", err, out, stderr)
		}
		if got, err := getManifest(b, "private/app:v1"); err != nil || got != want.String() {
			t.Errorf("private/app:v1 after the import: %s, %v; want %s", got, err, want)
		}
		if _, stderr, err := runBerth(t, t.Context(), strings.NewReader("wrong\n"), "import", "remote",
			"http://"+source.Addr, "--user", "admin", "--password-stdin", "--data", t.TempDir()); err == nil || !strings.Contains(stderr, "import") {
			t.Errorf("a wrong password: %v, stderr %q; want a one-line failure", err, stderr)
		}
	})

	t.Run("RemoteAgainstSkopeoSync", func(t *testing.T) {
		data := t.TempDir()
		out := importCmd(t, data, 0, "remote", "http://"+src.Addr, "--dry-run")
		if !strings.Contains(out, "would import 6 repositories") || countFiles(t, filepath.Join(data, "blobs")) != 0 {
			t.Errorf("remote dry run: placed files, or did not list the 6 repositories:\n%s", out)
		}
		start := time.Now()
		importCmd(t, data, 0, "remote", "http://"+src.Addr, "--jobs", "4")
		took := time.Since(start)
		bytes := dirBytes(t, filepath.Join(data, "blobs"))
		b := startRegistry(t, data)
		var tagged []string
		for _, r := range refs {
			if !strings.Contains(r, "@") {
				tagged = append(tagged, r)
			}
		}
		wantSameManifests(t, src.Addr, b.Addr, tagged, skip)
		wantReferrers(t, b, "lib/alpine", set.subject.String(), set.cosignSig.String(), set.orasRef.String())

		syncDir := t.TempDir()
		start = time.Now()
		for _, repo := range []string{"lib/alpine", "lib/multi", "team/app/web", "skopeo/multi", "docker/list"} {
			if out, err := skopeoRun(t, t.TempDir(), "", "sync", "--all", "--src", "docker", "--dest", "dir",
				"--src-tls-verify=false", src.Addr+"/"+repo, filepath.Join(syncDir, repo)); err != nil {
				t.Fatalf("skopeo sync %s: %v\n%s", repo, err, out)
			}
		}
		syncTook := time.Since(start)
		syncBytes := dirBytes(t, syncDir)
		t.Logf("remote import: %d bytes in %s = %.1f MB/s; skopeo sync of the same repositories: %d bytes in %s = %.1f MB/s",
			bytes, took.Round(time.Millisecond), float64(bytes)/took.Seconds()/1e6,
			syncBytes, syncTook.Round(time.Millisecond), float64(syncBytes)/syncTook.Seconds()/1e6)
	})

	if after := hashTree(t, src.Root); after != before {
		t.Error("the source registry's storage changed during the imports")
	}
}

// importCmd runs `berth import ARGS --data data`, wants exit status
// wantExit (0 or non-zero) and returns stdout and stderr together.
func importCmd(t *testing.T, data string, wantExit int, args ...string) string {
	t.Helper()
	stdout, stderr, err := runBerth(t, t.Context(), nil, append(append([]string{"import"}, args...), "--data", data)...)
	out := stdout + stderr
	if (err != nil) != (wantExit != 0) {
		t.Fatalf("berth import %v: %v, want exit %d\n%s", args, err, wantExit, out)
	}
	return out
}

// waitAndKill polls ready (bounded) and SIGKILLs cmd once it is true;
// it reports whether the process was still running then.
func waitAndKill(t *testing.T, cmd *exec.Cmd, ready func() bool) bool {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for !ready() && time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		time.Sleep(time.Millisecond)
	}
	err := cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return err == nil
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// wantLinkedBlobs checks that every blob file in data is the very file
// (same inode) of the registry:2 tree at root: no byte was copied.
func wantLinkedBlobs(t *testing.T, data, root string) {
	t.Helper()
	wantLinked(t, data, func(hexDigest string) string {
		return filepath.Join(root, "docker/registry/v2/blobs/sha256", hexDigest[:2], hexDigest, "data")
	})
}

// wantLinkedOCIBlobs is wantLinkedBlobs for a tree of OCI layouts: each
// blob is a link of some layout's file.
func wantLinkedOCIBlobs(t *testing.T, data, tree string) {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(tree, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && filepath.Base(filepath.Dir(path)) == "sha256" {
			files[e.Name()] = path
		}
		return nil
	})
	wantLinked(t, data, func(hexDigest string) string { return files[hexDigest] })
}

func wantLinked(t *testing.T, data string, source func(hexDigest string) string) {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(data, "blobs"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		n++
		mine, _ := os.Stat(path)
		theirs, err := os.Stat(source(e.Name()))
		if err != nil || !os.SameFile(mine, theirs) {
			t.Errorf("blob %s is not a hard link of the source's file (%v)", e.Name(), err)
		}
		return nil
	})
	if n == 0 {
		t.Error("no blob files were imported")
	}
	t.Logf("%d blob files, all hard links of the source's", n)
}

// wantReferrers checks that berth's referrers API lists want for subject.
func wantReferrers(t *testing.T, b *server, repo, subject string, want ...string) {
	t.Helper()
	resp, err := http.Get(b.URL("/v2/" + repo + "/referrers/" + subject))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &idx); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("referrers of %s: %d %s", subject, resp.StatusCode, body)
	}
	var got []string
	for _, m := range idx.Manifests {
		got = append(got, m.Digest)
	}
	for _, w := range want {
		if !hasString(got, w) {
			t.Errorf("referrers of %s@%s: %v lacks %s", repo, subject, got, w)
		}
	}
}

// getManifest returns the digest berth (or any registry at s.Addr) serves
// for ref.
func getManifest(s *server, ref string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/v2/"+strings.Replace(strings.Replace(ref, "@", "/manifests/", 1), ":", "/manifests/", 1), nil)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ","))
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", &httpStatusError{resp.StatusCode}
	}
	return string(store.DigestOf(store.SHA256, body)), nil
}

type httpStatusError struct{ status int }

func (e *httpStatusError) Error() string { return http.StatusText(e.status) }

// imageLayers returns the layer digests of ref in the source.
func imageLayers(t *testing.T, d *distribution, ref string) []string {
	t.Helper()
	img, err := remoteImage(t, d, ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// copyTree copies the regular files and directories under src to a new
// temp dir and returns it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
