package integration

// Tests that copy the fixture images to berth and back with skopeo, a
// client built on containers/image rather than go-containerregistry.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/fixtures"
)

// skopeoCmd runs skopeo with args and returns its stdout; a failure fails
// the test with skopeo's output. --insecure-policy: the machine's
// policy.json is none of the test's business. What skopeo copied is checked
// through the raw client rather than with `skopeo inspect`: every skopeo
// run probes https first, which costs 10 s against berth as long as
// TestBadInput_StalledConnections fails.
func skopeoCmd(t testing.TB, args ...string) []byte {
	t.Helper()
	skopeo := fixtures.RequireTool(t, "skopeo")
	cmd := exec.CommandContext(t.Context(), skopeo, append([]string{"--insecure-policy"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", cmd, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestSkopeo_Multiarch copies the multi-arch fixture from its OCI layout to
// berth and back to a new layout, with every platform, and compares digests
// on the way.
func TestSkopeo_Multiarch(t *testing.T) {
	fixtures.RequireTool(t, "skopeo")
	s := startRegistry(t, "")
	src := fixtures.Path(fixtures.Multiarch)
	_, latest := fixtureDescriptor(t, fixtures.Multiarch, "latest")
	want := latest.Digest.String()
	dest := "docker://" + s.Addr + "/multi/arch:latest"

	skopeoCmd(t, "copy", "--all", "--dest-tls-verify=false", "oci:"+src+":latest", dest)
	r := s.do(t, http.MethodGet, "/v2/multi/arch/manifests/latest", nil, "Accept", mediaTypeOCIIndex)
	if got := sha256Digest(r.Body); r.Status != http.StatusOK || got != want || r.Header.Get("Docker-Content-Digest") != want {
		t.Fatalf("%s: berth serves multi/arch:latest as %s (Docker-Content-Digest %q), want %s",
			r, got, r.Header.Get("Docker-Content-Digest"), want)
	}
	// Every child manifest and blob berth serves is byte for byte the
	// layout's.
	for _, d := range layoutBlobs(t, src) {
		want, err := os.ReadFile(filepath.Join(src, "blobs", "sha256", d[len("sha256:"):]))
		if err != nil {
			t.Fatal(err)
		}
		kind := "blobs"
		if bytes.Contains(want, []byte(`"schemaVersion"`)) {
			kind = "manifests"
		}
		r := s.do(t, http.MethodGet, "/v2/multi/arch/"+kind+"/"+d, nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, want) {
			t.Errorf("%s: status %d, %d bytes; want the layout's %d bytes", r, r.Status, len(r.Body), len(want))
		}
	}

	back := filepath.Join(t.TempDir(), "back")
	skopeoCmd(t, "copy", "--all", "--src-tls-verify=false", dest, "oci:"+back+":latest")
	_, gotLatest := layoutDescriptor(t, back, "latest")
	if gotLatest.Digest.String() != want {
		t.Errorf("copied back as %s, want %s", gotLatest.Digest, want)
	}
	if got, want := layoutBlobs(t, back), layoutBlobs(t, src); !equalSets(got, want) {
		t.Errorf("copy back holds blobs %v, want the layout's %v", got, want)
	}

	t.Run("delete", func(t *testing.T) {
		skopeoCmd(t, "delete", "--tls-verify=false", dest)
		wantError(t, s.do(t, http.MethodGet, "/v2/multi/arch/manifests/latest", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
		wantError(t, s.do(t, http.MethodGet, "/v2/multi/arch/manifests/"+want, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	})
}

// TestSkopeo_DockerList copies the Docker manifest list within berth with
// --preserve-digests, after go-containerregistry pushed it: skopeo 1.9
// cannot read a Docker manifest list from an OCI layout (see
// fixtures.TestLayouts_Skopeo), so skopeo's part is pulling it from berth
// and pushing it back unchanged.
func TestSkopeo_DockerList(t *testing.T) {
	fixtures.RequireTool(t, "skopeo")
	s := startRegistry(t, "")
	list, _ := fixtureIndex(t, fixtures.DockerList, "latest")
	want, err := list.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(s.ref(t, "docker/list:latest"), list, remoteOptions(t)...); err != nil {
		t.Fatalf("push the Docker manifest list: %v", err)
	}
	src := "docker://" + s.Addr + "/docker/list:latest"
	dest := "docker://" + s.Addr + "/docker/list-copy:latest"
	skopeoCmd(t, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", src, dest)

	r := s.do(t, http.MethodGet, "/v2/docker/list-copy/manifests/latest", nil)
	wantStatus(t, r, http.StatusOK)
	raw := r.Body
	if got := sha256Digest(raw); got != want.String() {
		t.Fatalf("copy is %s, want %s", got, want)
	}
	var parsed struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.MediaType != "application/vnd.docker.distribution.manifest.list.v2+json" || len(parsed.Manifests) != 2 {
		t.Fatalf("copy is a %q with %d children, want a Docker manifest list of 2", parsed.MediaType, len(parsed.Manifests))
	}
	for _, child := range parsed.Manifests {
		r := s.do(t, http.MethodGet, "/v2/docker/list-copy/manifests/"+child.Digest, nil)
		if got := sha256Digest(r.Body); r.Status != http.StatusOK || got != child.Digest {
			t.Errorf("%s: child %s of the copy is served as %s", r, child.Digest, got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("%s: Content-Type %q, want a Docker schema 2 manifest", r, ct)
		}
	}

	t.Run("delete by digest", func(t *testing.T) {
		skopeoCmd(t, "delete", "--tls-verify=false", "docker://"+s.Addr+"/docker/list-copy@"+want.String())
		wantError(t, s.do(t, http.MethodGet, "/v2/docker/list-copy/manifests/latest", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
		// The original is untouched.
		wantStatus(t, s.do(t, http.MethodGet, "/v2/docker/list/manifests/latest", nil), http.StatusOK)
	})
}

// layoutBlobs lists the digests of the files under dir/blobs/sha256.
func layoutBlobs(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, "sha256:"+e.Name())
	}
	return out
}

func equalSets(a, b []string) bool {
	set := map[string]bool{}
	for _, x := range a {
		set[x] = true
	}
	for _, x := range b {
		if !set[x] {
			return false
		}
	}
	return len(set) == len(b)
}
