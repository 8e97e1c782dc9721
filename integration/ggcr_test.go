package integration

// Tests that push and pull through go-containerregistry's remote package, a
// real client library, against the real binary.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/fixtures"
)

func TestGGCR_PushPullImage(t *testing.T) {
	s := startRegistry(t, "")
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "ggcr/image:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	for _, ref := range []string{"ggcr/image:v1", "ggcr/image@" + want.String()} {
		t.Run(ref, func(t *testing.T) {
			got, err := remote.Image(s.ref(t, ref), remoteOptions(t)...)
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("validate pulled image: %v", err)
			}
			if d, _ := got.Digest(); d != want {
				t.Errorf("pulled digest %s, want %s", d, want)
			}
		})
	}
}

// TestGGCR_Index pushes a multi-arch index with WriteIndex and validates
// every child of the pulled copy.
func TestGGCR_Index(t *testing.T) {
	s := startRegistry(t, "")
	randomIndex, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	multiarch, _ := fixtureIndex(t, fixtures.Multiarch, "latest")
	for _, tc := range []struct {
		name string
		repo string
		idx  v1.ImageIndex
	}{
		{"random", "ggcr/random-index", randomIndex},
		{"fixture multiarch", "ggcr/multi/arch", multiarch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := tc.idx.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.WriteIndex(s.ref(t, tc.repo+":latest"), tc.idx, remoteOptions(t)...); err != nil {
				t.Fatalf("push index: %v", err)
			}
			got, err := remote.Index(s.ref(t, tc.repo+":latest"), remoteOptions(t)...)
			if err != nil {
				t.Fatalf("pull index: %v", err)
			}
			if d, _ := got.Digest(); d != want {
				t.Errorf("pulled index digest %s, want %s", d, want)
			}
			if err := validate.Index(got); err != nil {
				t.Errorf("validate pulled index: %v", err)
			}
			im, err := got.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) < 2 {
				t.Fatalf("pulled index has %d children, want at least 2", len(im.Manifests))
			}
			for _, child := range im.Manifests {
				img, err := remote.Image(s.ref(t, tc.repo+"@"+child.Digest.String()), remoteOptions(t)...)
				if err != nil {
					t.Errorf("pull child %s: %v", child.Digest, err)
					continue
				}
				if err := validate.Image(img); err != nil {
					t.Errorf("validate child %s: %v", child.Digest, err)
				}
			}
		})
	}
}

// fixtureIndex opens the fixture layout name and returns the index its
// index.json tags refName, with the layout's root index.
func fixtureIndex(t testing.TB, layoutName, refName string) (v1.ImageIndex, v1.ImageIndex) {
	t.Helper()
	root, desc := fixtureDescriptor(t, layoutName, refName)
	idx, err := root.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatalf("layout %s: open index %s: %v", layoutName, desc.Digest, err)
	}
	return idx, root
}

// fixtureImage is fixtureIndex for an image manifest.
func fixtureImage(t testing.TB, layoutName, refName string) v1.Image {
	t.Helper()
	root, desc := fixtureDescriptor(t, layoutName, refName)
	img, err := root.Image(desc.Digest)
	if err != nil {
		t.Fatalf("layout %s: open image %s: %v", layoutName, desc.Digest, err)
	}
	return img
}

func fixtureDescriptor(t testing.TB, layoutName, refName string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	return layoutDescriptor(t, fixtures.Path(layoutName), refName)
}

// layoutDescriptor opens the OCI layout at dir and returns its root index
// and the descriptor its index.json tags refName.
func layoutDescriptor(t testing.TB, dir, refName string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("open layout %s: %v", dir, err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == refName {
			return root, d
		}
	}
	t.Fatalf("layout %s tags nothing %q", dir, refName)
	return nil, v1.Descriptor{}
}

// largeLayerSize is the size of the streamed layer: large enough that a
// server buffering bodies in memory shows it in its peak RSS.
const largeLayerSize = 200 << 20

// maxServerRSS bounds the server's peak resident memory over the large
// push and pull: far below the layer's size, so holding it whole fails.
const maxServerRSS = 100 << 20

// TestGGCR_LargeLayer pushes a 200 MiB layer generated from a seed, streamed
// from the generator, pulls it back and checks its digest, and checks that
// the server never held it in memory.
func TestGGCR_LargeLayer(t *testing.T) {
	s := startRegistry(t, "")
	layer, err := partial.CompressedToLayer(newSeededLayer(t, 42, largeLayerSize))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := layer.Digest()
	repo := s.repoRef(t, "ggcr/large")
	if err := remote.WriteLayer(repo, layer, remoteOptions(t)...); err != nil {
		t.Fatalf("push 200 MiB layer: %v", err)
	}
	pulled, err := remote.Layer(repo.Digest(want.String()), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	rc, err := pulled.Compressed()
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read pulled layer after %d bytes: %v", n, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != largeLayerSize || got != want.String() {
		t.Errorf("pulled %d bytes with digest %s, want %d bytes with %s", n, got, largeLayerSize, want)
	}
	// Without the peak RSS the test shows nothing about buffering: it fails
	// (procStatusKiB) rather than pass with a log line.
	if rss := procStatusKiB(t, s, "VmHWM") << 10; rss > maxServerRSS {
		t.Errorf("server peak RSS %d MiB over a %d MiB push and pull, want under %d MiB: bodies are being buffered",
			rss>>20, largeLayerSize>>20, maxServerRSS>>20)
	}
}

// seededLayer is a layer whose bytes come from seededReader each time they
// are read, so 200 MiB are never in memory at once.
type seededLayer struct {
	seed   uint64
	size   int64
	digest v1.Hash
}

func newSeededLayer(t testing.TB, seed uint64, size int64) *seededLayer {
	t.Helper()
	h, n, err := v1.SHA256(seededReader(seed, size))
	if err != nil || n != size {
		t.Fatalf("hash seeded layer: %d bytes, %v", n, err)
	}
	return &seededLayer{seed: seed, size: size, digest: h}
}

func (l *seededLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *seededLayer) Size() (int64, error)     { return l.size, nil }
func (l *seededLayer) MediaType() (types.MediaType, error) {
	return types.OCIUncompressedLayer, nil
}
func (l *seededLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(seededReader(l.seed, l.size)), nil
}

// TestGGCR_CrossRepoMount pushes an image to one repository, then the same
// image, pulled from there, to another: every blob must be mounted, none
// uploaded again.
func TestGGCR_CrossRepoMount(t *testing.T) {
	s := startRegistry(t, "")
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "mount/a:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push to mount/a: %v", err)
	}
	fromA, err := remote.Image(s.ref(t, "mount/a:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull from mount/a: %v", err)
	}
	if err := remote.Write(s.ref(t, "mount/b:v1"), fromA, remoteOptions(t)...); err != nil {
		t.Fatalf("push to mount/b: %v", err)
	}
	for _, method := range []string{"PATCH", "PUT"} {
		if lines := s.requestLines(method, "/v2/mount/b/blobs/uploads"); len(lines) != 0 {
			t.Errorf("%d %s requests uploaded data to mount/b, want none (blobs should be mounted):\n%s",
				len(lines), method, strings.Join(lines, "\n"))
		}
	}
	// Three layers and the config, each mounted with one POST that
	// answered 201 Created.
	if mounts := s.requestLines("POST", "/v2/mount/b/blobs/uploads", "status=201"); len(mounts) != 4 {
		t.Errorf("%d mounts into mount/b, want 4:\n%s", len(mounts), s.Log())
	}
	got, err := remote.Image(s.ref(t, "mount/b:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull from mount/b: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate image pulled from mount/b: %v", err)
	}

	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	d := layer.String()
	t.Run("raw mount", func(t *testing.T) {
		r := s.do(t, http.MethodPost, "/v2/mount/c/blobs/uploads/?mount="+d+"&from=mount/a", nil)
		wantStatus(t, r, http.StatusCreated)
		if loc := r.Header.Get("Location"); loc != "/v2/mount/c/blobs/"+d {
			t.Errorf("Location %q, want /v2/mount/c/blobs/%s", loc, d)
		}
		if got := r.Header.Get("Docker-Content-Digest"); got != d {
			t.Errorf("Docker-Content-Digest %q, want %s", got, d)
		}
		if r := s.do(t, http.MethodGet, "/v2/mount/c/blobs/"+d, nil); r.Status != http.StatusOK || sha256Digest(r.Body) != d {
			t.Errorf("%s: status %d, digest %s; want the mounted blob", r, r.Status, sha256Digest(r.Body))
		}
	})
	t.Run("mount from a repository without the blob starts an upload", func(t *testing.T) {
		s.pushBlob(t, "mount/empty", []byte("something else"))
		r := s.do(t, http.MethodPost, "/v2/mount/d/blobs/uploads/?mount="+d+"&from=mount/empty", nil)
		wantStatus(t, r, http.StatusAccepted)
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/v2/mount/d/blobs/uploads/") {
			t.Errorf("Location %q, want a new upload session in mount/d", loc)
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/mount/d/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
	t.Run("a blob is readable only where it is linked", func(t *testing.T) {
		wantError(t, s.do(t, http.MethodGet, "/v2/mount/empty/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
		wantError(t, s.do(t, http.MethodHead, "/v2/mount/empty/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

// requestLines returns the access-log lines of requests with method whose
// path starts with pathPrefix and that contain every one of also.
func (s *server) requestLines(method, pathPrefix string, also ...string) []string {
	var out []string
	for _, line := range s.logLines("method=" + method + " ") {
		if !strings.Contains(line, "path="+pathPrefix) {
			continue
		}
		if !slices.ContainsFunc(also, func(a string) bool { return !strings.Contains(line, a) }) {
			out = append(out, line)
		}
	}
	return out
}

func TestGGCR_Delete(t *testing.T) {
	s := startRegistry(t, "")
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := remote.Write(s.ref(t, "del/x:one"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := remote.Tag(s.ref(t, "del/x:two").(name.Tag), img, remoteOptions(t)...); err != nil {
		t.Fatalf("tag: %v", err)
	}
	layers, _ := img.Layers()
	layerHash, _ := layers[0].Digest()
	layer := layerHash.String()

	// While the manifest needs it, the layer cannot be deleted.
	wantError(t, s.do(t, http.MethodDelete, "/v2/del/x/blobs/"+layer, nil), http.StatusConflict, "DENIED")

	if err := remote.Delete(s.ref(t, "del/x:one"), remoteOptions(t)...); err != nil {
		t.Fatalf("delete tag one: %v", err)
	}
	wantError(t, s.do(t, http.MethodGet, "/v2/del/x/manifests/one", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	wantStatus(t, s.do(t, http.MethodGet, "/v2/del/x/manifests/two", nil), http.StatusOK)
	wantStatus(t, s.do(t, http.MethodGet, "/v2/del/x/manifests/"+d.String(), nil), http.StatusOK)

	if err := remote.Delete(s.ref(t, "del/x@"+d.String()), remoteOptions(t)...); err != nil {
		t.Fatalf("delete manifest by digest: %v", err)
	}
	for _, ref := range []string{"two", d.String()} {
		wantError(t, s.do(t, http.MethodGet, "/v2/del/x/manifests/"+ref, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
		wantError(t, s.do(t, http.MethodHead, "/v2/del/x/manifests/"+ref, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
	err = remote.Delete(s.ref(t, "del/x@"+d.String()), remoteOptions(t)...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: %v, want 404", err)
	}
	tags, err := remote.List(s.repoRef(t, "del/x"), remoteOptions(t)...)
	if err != nil || len(tags) != 0 {
		t.Errorf("tags after deleting the manifest: %v, %v; want none", tags, err)
	}

	// Nothing needs the layer now: it can be deleted, and stays deleted.
	wantStatus(t, s.do(t, http.MethodDelete, "/v2/del/x/blobs/"+layer, nil), http.StatusAccepted)
	wantError(t, s.do(t, http.MethodGet, "/v2/del/x/blobs/"+layer, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	wantError(t, s.do(t, http.MethodDelete, "/v2/del/x/blobs/"+layer, nil), http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestGGCR_TagsPagination(t *testing.T) {
	s := startRegistry(t, "")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"1.0", "a", "b", "c", "d", "e", "f", "latest", "v2_rc-1"}
	if err := remote.Write(s.ref(t, "tags/x:"+all[0]), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	for _, tag := range all[1:] {
		if err := remote.Tag(s.ref(t, "tags/x:"+tag).(name.Tag), img, remoteOptions(t)...); err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
	}
	t.Run("remote.List pages of 2", func(t *testing.T) {
		got, err := remote.List(s.repoRef(t, "tags/x"), remoteOptions(t, remote.WithPageSize(2))...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, all) {
			t.Errorf("tags %v, want %v", got, all)
		}
	})
	for _, tc := range []struct {
		name  string
		query string
		pages [][]string
	}{
		{"n=3 following Link", "?n=3", [][]string{all[0:3], all[3:6], all[6:9]}},
		{"n=4 last page short", "?n=4", [][]string{all[0:4], all[4:8], all[8:]}},
		{"n past the end", "?n=100", [][]string{all}},
		{"no n", "", [][]string{all}},
		{"last without n", "?last=c", [][]string{all[4:]}},
		{"last between tags", "?n=2&last=cc", [][]string{all[4:6], all[6:8], all[8:]}},
		{"last after every tag", "?last=zzz", [][]string{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := s.listPages(t, "/v2/tags/x/tags/list"+tc.query, "tags")
			if !slices.EqualFunc(pages, tc.pages, slices.Equal) {
				t.Errorf("pages %q, want %q", pages, tc.pages)
			}
		})
	}
}

// listPages GETs a tags/list or _catalog URL and every page its Link
// headers lead to, and returns the list field of each page. A page that
// says there is more must be full-sized or the walk would not end; the walk
// is bounded all the same.
func (s *server) listPages(t testing.TB, path, field string) [][]string {
	t.Helper()
	var pages [][]string
	for range 20 {
		r := s.do(t, http.MethodGet, path, nil)
		wantStatus(t, r, http.StatusOK)
		var body map[string]json.RawMessage
		var list []string
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if err := json.Unmarshal(body[field], &list); err != nil || list == nil {
			t.Fatalf("%s: %q is not a JSON list of strings: %v", r, field, err)
		}
		pages = append(pages, list)
		link := r.Header.Get("Link")
		if link == "" {
			return pages
		}
		next, ok := parseNextLink(link)
		if !ok {
			t.Fatalf("%s: Link %q is not <url>; rel=\"next\"", r, link)
		}
		path = next
	}
	t.Fatalf("%s: more than 20 pages", path)
	return nil
}

// parseNextLink reads `<url>; rel="next"` (RFC 8288, as the spec shows it).
func parseNextLink(link string) (string, bool) {
	target, params, ok := strings.Cut(link, ";")
	target = strings.TrimSpace(target)
	if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
		return "", false
	}
	if strings.ReplaceAll(strings.TrimSpace(params), " ", "") != `rel="next"` {
		return "", false
	}
	return target[1 : len(target)-1], true
}

func TestGGCR_Catalog(t *testing.T) {
	s := startRegistry(t, "")
	repos := []string{"cat/a", "cat/b", "cat/b/c", "cat/d-e", "cat/d.f"}
	for i, repo := range repos {
		s.pushRawImage(t, repo, "v1", uint64(i), 64)
	}
	reg, err := name.NewRegistry(s.Addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Catalog(t.Context(), reg, remoteOptions(t, remote.WithPageSize(2))...)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if !slices.Equal(got, repos) {
		t.Errorf("catalog %v, want %v", got, repos)
	}
	pages := s.listPages(t, "/v2/_catalog?n=2", "repositories")
	want := [][]string{repos[0:2], repos[2:4], repos[4:]}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("catalog pages %q, want %q", pages, want)
	}
	pages = s.listPages(t, "/v2/_catalog?n=10&last=cat/b", "repositories")
	if want := [][]string{repos[2:]}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("catalog after cat/b: %q, want %q", pages, want)
	}
}

const (
	artifactTypeSPDX      = "application/spdx+json"
	artifactTypeSignature = "application/vnd.example.signature+json"
	artifactTypeRaw       = "application/vnd.example.raw"
)

// TestGGCR_Referrers pushes artifacts with a subject and lists them through
// the referrers API, with and without an artifactType filter.
func TestGGCR_Referrers(t *testing.T) {
	s := startRegistry(t, "")
	opts := remoteOptions(t, remote.WithReferrersTagFallback(false))
	subject := fixtureImage(t, fixtures.Artifact, "subject")
	sbom := fixtureImage(t, fixtures.Artifact, "latest")
	subjectDesc, err := partial.Descriptor(subject)
	if err != nil {
		t.Fatal(err)
	}
	base, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Without an artifactType, the config's media type is what the
	// referrers API reports.
	signature := mutate.Subject(mutate.ConfigMediaType(base, artifactTypeSignature), *subjectDesc).(v1.Image)
	for _, push := range []struct {
		tag string
		img v1.Image
	}{{"subject", subject}, {"sbom", sbom}, {"sig", signature}} {
		if err := remote.Write(s.ref(t, "ref/x:"+push.tag), push.img, opts...); err != nil {
			t.Fatalf("push %s: %v", push.tag, err)
		}
	}
	sbomDigest, _ := sbom.Digest()
	sigDigest, _ := signature.Digest()
	subjectRef := s.repoRef(t, "ref/x").Digest(subjectDesc.Digest.String())

	rawDigest := s.pushRawArtifact(t, "ref/x", subjectDesc.Digest.String())

	for _, tc := range []struct {
		name   string
		filter string
		want   map[string]string // digest → artifactType
	}{
		{"all", "", map[string]string{
			sbomDigest.String(): artifactTypeSPDX, sigDigest.String(): artifactTypeSignature, rawDigest: artifactTypeRaw}},
		{"spdx", artifactTypeSPDX, map[string]string{sbomDigest.String(): artifactTypeSPDX}},
		{"raw", artifactTypeRaw, map[string]string{rawDigest: artifactTypeRaw}},
		{"unknown type", "application/vnd.example.none", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.filter != "" {
				o = append(slices.Clip(opts), remote.WithFilter("artifactType", tc.filter))
			}
			idx, err := remote.Referrers(subjectRef, o...)
			if err != nil {
				t.Fatalf("referrers: %v", err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := artifactTypes(im.Manifests); !maps.Equal(got, tc.want) {
				t.Errorf("remote.Referrers: %v, want %v", got, tc.want)
			}
			// go-containerregistry filters again on its side; the raw
			// answer shows whether the server filtered.
			s.checkRawReferrers(t, "ref/x", subjectDesc.Digest.String(), tc.filter, tc.want)
		})
	}
	t.Run("no referrers", func(t *testing.T) {
		s.checkRawReferrers(t, "ref/x", sbomDigest.String(), "", map[string]string{})
	})
	t.Run("no fallback tag", func(t *testing.T) {
		tags, err := remote.List(s.repoRef(t, "ref/x"), opts...)
		if want := []string{"sbom", "sig", "subject"}; err != nil || !slices.Equal(tags, want) {
			t.Errorf("tags %v, %v; want %v (a sha256-... tag means the client fell back to the tag scheme)", tags, err, want)
		}
	})
}

func artifactTypes(descs []v1.Descriptor) map[string]string {
	out := map[string]string{}
	for _, d := range descs {
		out[d.Digest.String()] = d.ArtifactType
	}
	return out
}

// pushRawArtifact PUTs an artifact manifest with subject through the raw
// client, checks the OCI-Subject answer, and returns its digest.
func (s *server) pushRawArtifact(t testing.TB, repo, subject string) string {
	t.Helper()
	emptyJSON := []byte("{}")
	empty := descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: s.pushBlob(t, repo, emptyJSON), Size: 2}
	payload := []byte("raw artifact payload")
	layer := descriptor{MediaType: "application/octet-stream", Digest: s.pushBlob(t, repo, payload), Size: int64(len(payload))}
	body, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeOCIManifest,
		"artifactType":  artifactTypeRaw,
		"config":        empty,
		"layers":        []descriptor{layer},
		"subject":       descriptor{MediaType: mediaTypeOCIManifest, Digest: subject, Size: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256Digest(body)
	r := s.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+d, body, "Content-Type", mediaTypeOCIManifest)
	wantStatus(t, r, http.StatusCreated)
	if got := r.Header.Get("OCI-Subject"); got != subject {
		t.Errorf("%s: OCI-Subject %q, want %q", r, got, subject)
	}
	return d
}

// checkRawReferrers GETs the referrers of subject, filtered when filter is
// set, and checks the answer is an OCI index listing want.
func (s *server) checkRawReferrers(t testing.TB, repo, subject, filter string, want map[string]string) {
	t.Helper()
	path := "/v2/" + repo + "/referrers/" + subject
	if filter != "" {
		path += "?artifactType=" + url.QueryEscape(filter)
	}
	r := s.do(t, http.MethodGet, path, nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != mediaTypeOCIIndex {
		t.Errorf("%s: Content-Type %q, want %q", r, ct, mediaTypeOCIIndex)
	}
	if filter != "" && r.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("%s: OCI-Filters-Applied %q, want artifactType", r, r.Header.Get("OCI-Filters-Applied"))
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(r.Body, &idx); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != types.OCIImageIndex || idx.Manifests == nil {
		t.Errorf("%s: not an OCI index with a manifests list", r)
	}
	if got := artifactTypes(idx.Manifests); !maps.Equal(got, want) {
		t.Errorf("%s: referrers %v, want %v", r, got, want)
	}
}
