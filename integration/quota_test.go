package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/fixtures"
)

// TestQuota_PushesRefusedEarly sets a namespace quota and pushes with
// go-containerregistry, the raw API and skopeo: a shared layer counts
// once, a push over the limit gets 403 DENIED with usage and limit, and
// nothing of it stays on disk.
func TestQuota_PushesRefusedEarly(t *testing.T) {
	skopeo := fixtures.RequireTool(t, "skopeo")
	s := startRegistry(t, "")
	s.berthOK(t, "quota", "set", "team", "--limit", "300KiB")
	l1, l2 := mustLayer(t, 100<<10), mustLayer(t, 100<<10)
	s.push(t, "team/a:v1", mustImage(t, l1, l2))
	imgB := mustImage(t, l1, l2)
	s.push(t, "team/b:v1", imgB) // the same layers: no more usage
	list := s.berthOK(t, "quota", "list")
	if !lineMatches(list, "namespace .* team .* 300 KiB") {
		t.Fatalf("quota list:\n%s", list)
	}
	layer := mustLayer(t, 150<<10)
	err := remote.Write(s.ref(t, "team/a:v2"), mustImage(t, layer), remoteOptions(t)...)
	wantDenied(t, "a push over the namespace quota", err, "quota of namespace team exceeded")
	ld, _ := layer.Digest()
	for _, f := range blobFiles(t, s.Data) {
		if strings.HasSuffix(f, ld.Hex) {
			t.Errorf("the refused layer %s is on disk", ld)
		}
	}

	// A monolithic upload of known size is refused before its body.
	big := bytes.Repeat([]byte("x"), 200<<10)
	r := s.do(t, http.MethodPost, "/v2/team/c/blobs/uploads/?digest="+sha256Digest(big), big, "Content-Type", "application/octet-stream")
	if r.Status != http.StatusForbidden || errorCode(r) != "DENIED" || !strings.Contains(string(r.Body), "bytes used") {
		t.Fatalf("monolithic upload over quota: %s", r)
	}
	// A chunk that crosses is refused, and its session ends with it.
	r = s.do(t, http.MethodPost, "/v2/team/c/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	r = s.do(t, http.MethodPatch, loc, big, "Content-Type", "application/octet-stream")
	if r.Status != http.StatusForbidden || errorCode(r) != "DENIED" {
		t.Fatalf("crossing chunk: %s", r)
	}
	if r = s.do(t, http.MethodGet, loc, nil); r.Status != http.StatusNotFound || errorCode(r) != "BLOB_UPLOAD_UNKNOWN" {
		t.Fatalf("the refused session lives on: %s", r)
	}

	// skopeo, into a repository whose own quota the fixture's ~4 KB cross.
	s.berthOK(t, "quota", "set", "team/multi", "--repository", "--limit", "1000")
	cmd := exec.CommandContext(t.Context(), skopeo, "--insecure-policy", "copy", "--all", "--dest-tls-verify=false",
		"oci:"+fixtures.Path(fixtures.Multiarch)+":latest", "docker://"+s.Addr+"/team/multi:latest")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(strings.ToLower(string(out)), "quota of repository team/multi") {
		t.Fatalf("skopeo push over quota: %v\n%s", err, out)
	}
	du := s.berthOK(t, "du")
	if !lineMatches(du, "namespace .* team .* 300 KiB") || !lineMatches(du, "repository .* team/multi .* 1000 B") {
		t.Errorf("du does not show usage against the quotas:\n%s", du)
	}
	// Pulls go on.
	pullAndValidate(t, s, "team/b:v1", imgB)
	s.stop(t)
	checkStore(t, s.Data)
}
