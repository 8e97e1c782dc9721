package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-registry/berth/fixtures"

	"github.com/berth-registry/berth/internal/storetest"
)

// distribution is a running distribution registry (registry:2) with
// filesystem storage under Root.
type distribution struct {
	Addr   string
	Root   string // rootdirectory: the tree `berth import registry2` reads
	config string
	bin    string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *storetest.SyncBuffer
}

// startDistribution runs distribution's registry on a free 127.0.0.1 port
// over the storage at root (a new one when root is "") and waits until
// /v2/ answers. It is stopped when the test ends.
func startDistribution(t testing.TB, root string) *distribution {
	return startDistributionWith(t, root, "")
}

// startDistributionWith is startDistribution with storageExtra added to
// the storage section of the config (two-space indented lines).
func startDistributionWith(t testing.TB, root, storageExtra string) *distribution {
	t.Helper()
	bin := fixtures.RequireRegistry2(t)
	if root == "" {
		root = t.TempDir()
	}
	d := &distribution{Addr: freeAddr(t), Root: root, bin: bin, config: filepath.Join(t.TempDir(), "config.yml")}
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
%s  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, storageExtra, root, d.Addr)
	if err := os.WriteFile(d.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	return d
}

func (d *distribution) start(t testing.TB) {
	t.Helper()
	d.cmd = exec.Command(d.bin, "serve", d.config)
	// No tracing export: the tests talk to 127.0.0.1 only.
	d.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	d.log = &storetest.SyncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start distribution: %v", err)
	}
	d.done = make(chan struct{})
	done := d.done
	go func() { d.cmd.Wait(); close(done) }()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + d.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("distribution exited before it was ready:\n%s", d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("distribution did not answer /v2/ in 20s:\n%s", d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *distribution) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// garbageCollect stops the registry, runs its garbage-collect (which
// leaves the _layers links of the blobs it removes dangling) and starts it
// again.
func (d *distribution) garbageCollect(t testing.TB) {
	t.Helper()
	d.stop()
	out, err := exec.Command(d.bin, "garbage-collect", d.config).CombinedOutput()
	if err != nil {
		t.Fatalf("distribution garbage-collect: %v\n%s", err, out)
	}
	d.start(t)
}

func (d *distribution) ref(t testing.TB, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(d.Addr+"/"+r, name.Insecure, name.StrictValidation)
	if err != nil {
		t.Fatalf("parse reference %q: %v", r, err)
	}
	return ref
}

// sourceSet is what fillDistribution pushed, for the oracle.
type sourceSet struct {
	subject    v1.Hash // lib/alpine:1, which the signatures refer to
	cosignSig  v1.Hash // tagged sha256-<hex>.sig
	orasRef    v1.Hash // an artifact with a subject: a referrer
	untagged   v1.Hash // pushed by digest only
	deletedTag string
	fallback   []string // fallback tags, as repo:tag
	bytes      int64    // blob bytes pushed, roughly
}

// fillDistribution pushes the import test's images into d through its API
// with go-containerregistry and skopeo: Docker schema 2 and OCI images,
// nested names, a multi-arch index, a Docker manifest list, an untagged
// manifest, a deleted tag, a deleted manifest whose blobs the registry's GC
// then removes, a cosign-style .sig tag and an artifact with a subject
// (go-containerregistry keeps the sha256-<hex> fallback index for it, since
// distribution has no referrers API). layerSize sets the size of the layers.
func fillDistribution(t *testing.T, d *distribution, layerSize int64) sourceSet {
	t.Helper()
	var set sourceSet
	push := func(ref string, img v1.Image) v1.Hash {
		t.Helper()
		if err := remote.Write(d.ref(t, ref), img, remoteOptions(t)...); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		dg, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		set.bytes += imageBytes(t, img)
		return dg
	}
	shared := mustLayer(t, layerSize)
	alpine1 := mustImage(t, shared, mustLayer(t, layerSize), mustLayer(t, layerSize))
	set.subject = push("lib/alpine:1", alpine1)
	push("lib/alpine:2", mustImage(t, shared, mustLayer(t, layerSize)))
	oci := mutate.ConfigMediaType(mutate.MediaType(mustImage(t, mustLayer(t, layerSize)), types.OCIManifestSchema1), types.OCIConfigJSON)
	push("team/app/web:v1", oci)
	untagged := mustImage(t, mustLayer(t, 4096))
	dg, _ := untagged.Digest()
	set.untagged = push("lib/alpine@"+dg.String(), untagged)

	idx, err := random.Index(layerSize, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(d.ref(t, "lib/multi:latest"), idx, remoteOptions(t)...); err != nil {
		t.Fatalf("push index: %v", err)
	}

	old := push("lib/alpine:old", mustImage(t, mustLayer(t, 4096)))
	_ = old
	if err := remote.Delete(d.ref(t, "lib/alpine:old"), remoteOptions(t)...); err != nil {
		t.Fatalf("delete tag lib/alpine:old: %v", err)
	}
	set.deletedTag = "lib/alpine:old"
	gone := push("lib/gone:v1", mustImage(t, mustLayer(t, 4096)))
	if err := remote.Delete(d.ref(t, "lib/gone@"+gone.String()), remoteOptions(t)...); err != nil {
		t.Fatalf("delete manifest lib/gone: %v", err)
	}

	sigTag := fmt.Sprintf("lib/alpine:sha256-%s.sig", set.subject.Hex)
	set.cosignSig = push(sigTag, mustImage(t, mustLayer(t, 512)))
	set.fallback = append(set.fallback, sigTag)

	subjectDesc, err := remote.Head(d.ref(t, "lib/alpine:1"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	artifact := mutate.ConfigMediaType(mutate.MediaType(mustImage(t, mustLayer(t, 512)), types.OCIManifestSchema1), "application/vnd.example.sbom")
	withSubject, ok := mutate.Subject(artifact, *subjectDesc).(v1.Image)
	if !ok {
		t.Fatal("mutate.Subject did not return an image")
	}
	orasDigest, _ := withSubject.Digest()
	set.orasRef = push("lib/alpine@"+orasDigest.String(), withSubject)
	set.fallback = append(set.fallback, fmt.Sprintf("lib/alpine:sha256-%s", set.subject.Hex))

	list, _ := fixtureIndex(t, fixtures.DockerList, "latest")
	if err := remote.WriteIndex(d.ref(t, "docker/list:latest"), list, remoteOptions(t)...); err != nil {
		t.Fatalf("push Docker manifest list: %v", err)
	}
	home := t.TempDir()
	if out, err := skopeoRun(t, home, "", "copy", "--all", "--dest-tls-verify=false",
		"oci:"+fixtures.Path(fixtures.Multiarch)+":latest", "docker://"+d.Addr+"/skopeo/multi:latest"); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	d.garbageCollect(t)
	if n := danglingEntries(t, d.Root); n == 0 {
		t.Fatal("the registry's garbage-collect left no dangling _layers or revision entry: the test lost its point")
	} else {
		t.Logf("distribution's garbage-collect left %d dangling _layers and revision entries", n)
	}
	return set
}

// danglingEntries counts the _layers and _manifests/revisions entries under
// root whose blob data is gone. distribution v3's garbage-collect removes
// the link file and leaves its directory; registry:2 releases before it
// left the link file too. Either way the importer must take them for
// absent, not for missing content.
func danglingEntries(t *testing.T, root string) int {
	t.Helper()
	v2 := filepath.Join(root, "docker", "registry", "v2")
	n := 0
	filepath.WalkDir(filepath.Join(v2, "repositories"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || filepath.Base(filepath.Dir(path)) != "sha256" {
			return nil
		}
		if !strings.Contains(path, "/_layers/") && !strings.Contains(path, "/_manifests/revisions/") {
			return nil
		}
		h := e.Name()
		if _, err := os.Stat(filepath.Join(v2, "blobs", "sha256", h[:2], h, "data")); err != nil {
			n++
		}
		return fs.SkipDir
	})
	return n
}

// imageBytes is the size of an image's layers and config.
func imageBytes(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// sourceRefs lists what the oracle compares: every tag of every repository
// of d (through its API) and every revision its storage keeps whose body is
// there, as "repo:tag" and "repo@digest".
func sourceRefs(t *testing.T, d *distribution) []string {
	t.Helper()
	reg, _ := name.NewRegistry(d.Addr, name.Insecure)
	repos, err := remote.Catalog(t.Context(), reg, remoteOptions(t)...)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	var refs []string
	for _, repo := range repos {
		r, _ := name.NewRepository(d.Addr+"/"+repo, name.Insecure)
		tags, err := remote.List(r, remoteOptions(t)...)
		if err != nil {
			t.Fatalf("tags of %s: %v", repo, err)
		}
		for _, tag := range tags {
			refs = append(refs, repo+":"+tag)
		}
		revs := filepath.Join(d.Root, "docker/registry/v2/repositories", repo, "_manifests/revisions/sha256")
		entries, _ := os.ReadDir(revs)
		for _, e := range entries {
			data := filepath.Join(d.Root, "docker/registry/v2/blobs/sha256", e.Name()[:2], e.Name(), "data")
			if _, err := os.Stat(data); err == nil {
				refs = append(refs, repo+"@sha256:"+e.Name())
			}
		}
	}
	sort.Strings(refs)
	return refs
}

// hashTree returns a digest of every path, mode, size and content under
// root: equal before and after means the tree was not changed.
func hashTree(t testing.TB, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(h, "%s %v %d %d\n", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("hash tree %s: %v", root, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// wantSameManifests pulls every ref from the source at srcAddr and from
// berth and fails on a digest or media type that differs; skip says which
// refs berth is not expected to have (fallback tags).
func wantSameManifests(t *testing.T, srcAddr, berthAddr string, refs []string, skip map[string]bool) {
	t.Helper()
	for _, r := range refs {
		if skip[r] {
			continue
		}
		src, err := name.ParseReference(srcAddr+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := name.ParseReference(berthAddr+"/"+r, name.Insecure)
		want, err := remote.Get(src, remoteOptions(t)...)
		if err != nil {
			t.Fatalf("source %s: %v", r, err)
		}
		got, err := remote.Get(dst, remoteOptions(t)...)
		if err != nil {
			t.Errorf("berth %s: %v", r, err)
			continue
		}
		if got.Digest != want.Digest || got.MediaType != want.MediaType || string(got.Manifest) != string(want.Manifest) {
			t.Errorf("%s: berth has %s (%s), the source %s (%s)", r, got.Digest, got.MediaType, want.Digest, want.MediaType)
		}
	}
}

// berthTags returns berth's tags of repo, sorted.
func berthTags(t *testing.T, addr, repo string) []string {
	t.Helper()
	r, _ := name.NewRepository(addr+"/"+repo, name.Insecure)
	tags, err := remote.List(r, remoteOptions(t)...)
	if err != nil {
		t.Fatalf("berth tags of %s: %v", repo, err)
	}
	sort.Strings(tags)
	return tags
}

// hasString reports whether list holds s.
func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remoteImage(t *testing.T, d *distribution, ref string) (v1.Image, error) {
	return remote.Image(d.ref(t, ref), remoteOptions(t)...)
}
