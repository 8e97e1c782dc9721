package importer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

// tree writes a registry:2 storage directory for tests.
type tree struct {
	t    *testing.T
	root string // the directory holding docker/registry/v2
}

func newTree(t *testing.T) *tree { return &tree{t: t, root: t.TempDir()} }

func (tr *tree) path(parts ...string) string {
	return filepath.Join(append([]string{tr.root, "docker", "registry", "v2"}, parts...)...)
}

func (tr *tree) write(path string, b []byte) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// blob writes content as a blob and links it as a layer of repo.
func (tr *tree) blob(repo string, content []byte) store.Digest {
	d := store.DigestOf(store.SHA256, content)
	tr.write(tr.path("blobs", "sha256", d.Hex()[:2], d.Hex(), "data"), content)
	tr.write(tr.path("repositories", repo, "_layers", "sha256", d.Hex(), "link"), []byte(d))
	return d
}

// manifest writes body as a revision of repo, tagged with tags.
func (tr *tree) manifest(repo string, body []byte, tags ...string) store.Digest {
	d := store.DigestOf(store.SHA256, body)
	tr.write(tr.path("blobs", "sha256", d.Hex()[:2], d.Hex(), "data"), body)
	tr.write(tr.path("repositories", repo, "_manifests", "revisions", "sha256", d.Hex(), "link"), []byte(d))
	for _, tag := range tags {
		tr.write(tr.path("repositories", repo, "_manifests", "tags", tag, "current", "link"), []byte(d))
	}
	return d
}

// image writes an OCI image of one layer in repo and returns its digest.
func (tr *tree) image(repo, layer string, tags ...string) store.Digest {
	cfg := tr.blob(repo, []byte(`{"layer":"`+layer+`"}`))
	l := tr.blob(repo, []byte(layer))
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		cfg, len(`{"layer":"`+layer+`"}`), l, len(layer))
	return tr.manifest(repo, []byte(body), tags...)
}

func mustStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRegistry2_Repositories(t *testing.T) {
	tr := newTree(t)
	tr.image("a", "x", "v1")
	tr.image("a/b/c", "y", "v1") // nested inside a
	tr.write(tr.path("repositories", "a", "_uploads", "123", "data"), []byte("partial"))
	os.MkdirAll(tr.path("repositories", "empty", "dir"), 0o755)
	src, err := OpenRegistry2(tr.root)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := src.Repositories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(repos, ",") != "a,a/b/c" {
		t.Fatalf("repositories %v, want [a a/b/c]", repos)
	}
	if _, err := OpenRegistry2(t.TempDir()); err == nil {
		t.Fatal("an empty directory opened as registry:2 storage")
	}
}

func TestImport_Registry2Problems(t *testing.T) {
	tr := newTree(t)
	subject := tr.image("lib/app", "base", "v1")
	sig := tr.image("lib/app", "signature", "sha256-"+subject.Hex()+".sig")
	schema1 := tr.manifest("lib/app", []byte(`{"schemaVersion":1,"name":"lib/app","tag":"old","fsLayers":[]}`), "old")
	broken := tr.image("lib/app", "lost layer", "broken")
	lost := store.DigestOf(store.SHA256, []byte("lost layer"))
	os.Remove(tr.path("blobs", "sha256", lost.Hex()[:2], lost.Hex(), "data"))
	tr.write(tr.path("repositories", "lib/app", "_manifests", "tags", "dangling", "current", "link"),
		[]byte(store.DigestOf(store.SHA256, []byte("gone"))))
	tr.image("other", "z", "v1")
	before := treeDigest(t, tr.root)

	s := mustStore(t)
	src, _ := OpenRegistry2(tr.root)
	var out bytes.Buffer
	report, err := Import(context.Background(), s, src, Options{Only: "lib/*"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	for _, want := range []string{string(schema1) + ": a Docker schema 1 manifest", string(lost), "lib/app:dangling not imported", "recorded as broken"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if report.Repositories != 1 || report.Broken != 1 || report.Fallback != 1 {
		t.Errorf("report %+v: want 1 repository (--only), 1 broken, 1 fallback tag", report)
	}
	if _, err := s.Manifest("lib/app", store.Reference{Tag: "v1"}); err != nil {
		t.Errorf("lib/app:v1: %v", err)
	}
	if _, err := s.Manifest("lib/app", store.Reference{Tag: "sha256-" + subject.Hex() + ".sig"}); err == nil {
		t.Error("the .sig fallback tag was kept without KeepFallbackTags")
	}
	if !s.IsManifestBroken("lib/app", broken) {
		t.Error("the manifest with a missing layer is not marked broken")
	}
	refs, err := s.Referrers("lib/app", subject, "", "", 100, 1<<20)
	if err != nil || len(refs.Digests) != 1 || refs.Digests[0] != sig {
		t.Errorf("referrers of the subject: %v, %v; want the .sig manifest", refs, err)
	}
	if treeDigest(t, tr.root) != before {
		t.Error("the source tree changed")
	}
}

func TestImport_DryRun(t *testing.T) {
	tr := newTree(t)
	tr.image("lib/app", "base", "v1")
	s := mustStore(t)
	src, _ := OpenRegistry2(tr.root)
	var out bytes.Buffer
	report, err := Import(context.Background(), s, src, Options{DryRun: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if report.Manifests != 1 || report.Blobs["checked"] != 2 {
		t.Errorf("dry run report %+v, want 1 manifest, 2 blobs checked", report)
	}
	if repos, _, _ := s.Repositories("", 100, func(string) bool { return true }); len(repos) != 0 {
		t.Errorf("a dry run recorded repositories %v", repos)
	}
}

func TestLayoutTag(t *testing.T) {
	for _, tc := range []struct{ name, ref, want string }{
		{"bare tag", "v1.2", "v1.2"},
		{"none", "", ""},
		{"full reference", "example.com/app:v1", "v1"},
		{"port, no tag", "example.com:5000/app", ""},
		{"not a tag", "-bad", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := layoutTag(tc.ref); got != tc.want {
				t.Errorf("layoutTag(%q) = %q, want %q", tc.ref, got, tc.want)
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, repo string
		want                bool
	}{
		{"empty matches all", "", "a/b", true},
		{"star crosses slashes", "lib/*", "lib/a/b", true},
		{"prefix only", "lib/*", "library/a", false},
		{"exact", "lib/a", "lib/a", true},
		{"question mark", "lib/?", "lib/ab", false},
		{"dot is literal", "lib.a", "libxa", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matcher(tc.pattern)(tc.repo); got != tc.want {
				t.Errorf("matcher(%q)(%q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
			}
		})
	}
}

// treeDigest hashes every path and content under root.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b bytes.Buffer
	filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d\n", path, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(path)
			b.Write(c)
		}
		return nil
	})
	return string(store.DigestOf(store.SHA256, b.Bytes()))
}
