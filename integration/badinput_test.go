package integration

// Bad input: malformed requests get the spec's error codes and never a 5xx;
// a killed server loses nothing it acknowledged and shows nothing half
// written; connections that never make a request do not hold the server.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// badRequest is one malformed request and the answer the spec (or, where
// the spec names no code, berth's documented choice in server/errors.go)
// gives it. "{session}" in path becomes a fresh upload session of bad/repo.
type badRequest struct {
	name    string
	method  string
	path    string
	headers []string // name, value pairs
	body    []byte
	status  int
	code    string
	detail  string // a string the error detail must contain; empty: not checked
}

func TestBadInput_ErrorCodes(t *testing.T) {
	s := startRegistry(t, "")
	img := s.pushRawImage(t, "bad/repo", "v1", 1, 64)
	otherBlob := s.pushBlob(t, "bad/other", []byte("only in bad/other"))
	otherSession := s.startUpload(t, "bad/other")
	otherID := otherSession[strings.LastIndexByte(otherSession, '/')+1:]
	missing := sha256Digest([]byte("pushed nowhere"))
	hex64 := strings.Repeat("a", 64)
	manifestType := []string{"Content-Type", mediaTypeOCIManifest}
	manifest := func(layers ...string) []byte {
		var descs []descriptor
		for _, d := range layers {
			descs = append(descs, descriptor{MediaType: mediaTypeOCILayer, Digest: d, Size: 1})
		}
		return ociManifest(t, img.Config, descs)
	}

	cases := []badRequest{
		// Repository names: the spec's grammar and berth's 255-byte limit.
		{name: "upper-case name", method: "GET", path: "/v2/bad/Repo/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "double dot in name", method: "GET", path: "/v2/bad..repo/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "dot-dot component", method: "GET", path: "/v2/bad/../repo/manifests/v1", status: 400, code: "NAME_INVALID"},
		{name: "empty component", method: "GET", path: "/v2/bad//repo/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "trailing separator", method: "GET", path: "/v2/bad-/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "name of 256 bytes", method: "GET", path: "/v2/" + strings.Repeat("a", 256) + "/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "invalid name on upload", method: "POST", path: "/v2/Bad/blobs/uploads/", status: 400, code: "NAME_INVALID"},
		{name: "invalid name on manifest put", method: "PUT", path: "/v2/bad_/manifests/v1",
			headers: manifestType, body: img.Manifest, status: 400, code: "NAME_INVALID"},

		// Digests.
		{name: "digest with non-hex", method: "GET", path: "/v2/bad/repo/blobs/sha256:" + strings.Repeat("z", 64), status: 400, code: "DIGEST_INVALID"},
		{name: "digest with upper-case hex", method: "GET", path: "/v2/bad/repo/blobs/sha256:" + strings.Repeat("A", 64), status: 400, code: "DIGEST_INVALID"},
		{name: "digest too short", method: "GET", path: "/v2/bad/repo/blobs/sha256:abc", status: 400, code: "DIGEST_INVALID"},
		{name: "sha512 of sha256 length", method: "GET", path: "/v2/bad/repo/blobs/sha512:" + hex64, status: 400, code: "DIGEST_INVALID"},
		{name: "unknown algorithm", method: "GET", path: "/v2/bad/repo/blobs/md5:" + hex64[:32], status: 400, code: "DIGEST_INVALID"},
		{name: "digest without algorithm", method: "GET", path: "/v2/bad/repo/blobs/" + hex64, status: 400, code: "DIGEST_INVALID"},
		{name: "HEAD with bad digest", method: "HEAD", path: "/v2/bad/repo/blobs/sha256:abc", status: 400},
		{name: "DELETE with bad digest", method: "DELETE", path: "/v2/bad/repo/blobs/sha256:abc", status: 400, code: "DIGEST_INVALID"},
		{name: "manifest by bad digest", method: "GET", path: "/v2/bad/repo/manifests/sha256:xyz", status: 400, code: "DIGEST_INVALID"},
		{name: "referrers of bad digest", method: "GET", path: "/v2/bad/repo/referrers/sha256:xyz", status: 400, code: "DIGEST_INVALID"},
		{name: "monolithic upload with bad digest", method: "POST", path: "/v2/bad/repo/blobs/uploads/?digest=sha256:xyz",
			body: []byte("x"), status: 400, code: "DIGEST_INVALID"},

		// Tags: the spec gives no code; berth answers MANIFEST_INVALID.
		{name: "tag starting with a dash", method: "PUT", path: "/v2/bad/repo/manifests/-v1",
			headers: manifestType, body: img.Manifest, status: 400, code: "MANIFEST_INVALID"},
		{name: "tag of 129 bytes", method: "GET", path: "/v2/bad/repo/manifests/" + strings.Repeat("t", 129), status: 400, code: "MANIFEST_INVALID"},
		{name: "invalid ?tag= on put by digest", method: "PUT", path: "/v2/bad/repo/manifests/" + img.Digest + "?tag=no!",
			headers: manifestType, body: img.Manifest, status: 400, code: "MANIFEST_INVALID"},

		// Manifests.
		{name: "layer unknown to the registry", method: "PUT", path: "/v2/bad/repo/manifests/missing",
			headers: manifestType, body: manifest(missing), status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
		{name: "layer only in another repository", method: "PUT", path: "/v2/bad/repo/manifests/other",
			headers: manifestType, body: manifest(otherBlob), status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
		// Descriptor sizes must be those of the stored content (containerd
		// refuses the image on pull otherwise); the detail names the blob.
		{name: "layer size differs from the stored blob", method: "PUT", path: "/v2/bad/repo/manifests/wrongsize",
			headers: manifestType, body: manifest(img.Layer.Digest), status: 400, code: "MANIFEST_INVALID", detail: img.Layer.Digest},
		{name: "index child size differs from the stored manifest", method: "PUT", path: "/v2/bad/repo/manifests/wrongsize-index",
			headers: []string{"Content-Type", mediaTypeOCIIndex}, body: indexOf(t, img.Digest), status: 400, code: "MANIFEST_INVALID", detail: img.Digest},
		{name: "index child unknown", method: "PUT", path: "/v2/bad/repo/manifests/index",
			headers: []string{"Content-Type", mediaTypeOCIIndex}, body: indexOf(t, img.Digest, missing), status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
		{name: "mediaType disagrees with Content-Type", method: "PUT", path: "/v2/bad/repo/manifests/v2",
			headers: []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, body: img.Manifest, status: 400, code: "MANIFEST_INVALID"},
		{name: "both manifests and layers", method: "PUT", path: "/v2/bad/repo/manifests/both",
			headers: []string{"Content-Type", mediaTypeOCIIndex}, body: ambiguousManifest(t, img), status: 400, code: "MANIFEST_INVALID"},
		{name: "not JSON", method: "PUT", path: "/v2/bad/repo/manifests/v2",
			headers: manifestType, body: []byte("{not json"), status: 400, code: "MANIFEST_INVALID"},
		{name: "schemaVersion 1", method: "PUT", path: "/v2/bad/repo/manifests/v2",
			headers: manifestType, body: []byte(`{"schemaVersion":1,"mediaType":"` + mediaTypeOCIManifest + `"}`), status: 400, code: "MANIFEST_INVALID"},
		{name: "schema 1 media type", method: "PUT", path: "/v2/bad/repo/manifests/v2",
			headers: []string{"Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body: []byte(`{"schemaVersion":1}`), status: 400, code: "MANIFEST_INVALID"},
		{name: "put by a digest the body does not have", method: "PUT", path: "/v2/bad/repo/manifests/" + missing,
			headers: manifestType, body: img.Manifest, status: 400, code: "DIGEST_INVALID"},
		{name: "manifest over 4 MiB", method: "PUT", path: "/v2/bad/repo/manifests/huge",
			headers: manifestType, body: paddedManifest(t, img, 4<<20+1), status: 413, code: "MANIFEST_INVALID"},

		// Uploads.
		{name: "PATCH to an unknown session", method: "PATCH", path: "/v2/bad/repo/blobs/uploads/" + strings.Repeat("0", 32),
			body: []byte("x"), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PUT to an unknown session", method: "PUT", path: "/v2/bad/repo/blobs/uploads/" + strings.Repeat("0", 32) + "?digest=" + missing,
			status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "status of an unknown session", method: "GET", path: "/v2/bad/repo/blobs/uploads/" + strings.Repeat("0", 32), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "cancel of an unknown session", method: "DELETE", path: "/v2/bad/repo/blobs/uploads/" + strings.Repeat("0", 32), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "session id berth cannot have issued", method: "PATCH", path: "/v2/bad/repo/blobs/uploads/not.an.id",
			body: []byte("x"), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "session of another repository", method: "PATCH", path: "/v2/bad/repo/blobs/uploads/" + otherID,
			body: []byte("x"), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PUT with a digest the content does not have", method: "PUT", path: "{session}?digest=" + missing,
			body: []byte("content"), status: 400, code: "DIGEST_INVALID"},
		{name: "PUT without digest", method: "PUT", path: "{session}", body: []byte("content"), status: 400, code: "DIGEST_INVALID"},
		{name: "monolithic POST with a digest the content does not have", method: "POST", path: "/v2/bad/repo/blobs/uploads/?digest=" + missing,
			body: []byte("content"), status: 400, code: "DIGEST_INVALID"},

		// Lists.
		{name: "negative n", method: "GET", path: "/v2/bad/repo/tags/list?n=-1", status: 400, code: "UNSUPPORTED"},
		{name: "n not a number", method: "GET", path: "/v2/bad/repo/tags/list?n=ten", status: 400, code: "UNSUPPORTED"},
		{name: "catalog n not a number", method: "GET", path: "/v2/_catalog?n=1e3", status: 400, code: "UNSUPPORTED"},
		{name: "tags of an unknown repository", method: "GET", path: "/v2/bad/nothing/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{name: "unknown manifest", method: "GET", path: "/v2/bad/repo/manifests/nothing", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown blob", method: "GET", path: "/v2/bad/repo/blobs/" + missing, status: 404, code: "BLOB_UNKNOWN"},
		{name: "unknown blob HEAD", method: "HEAD", path: "/v2/bad/repo/blobs/" + missing, status: 404},
		{name: "no such endpoint", method: "GET", path: "/v2/bad/repo/nothing", status: 404, code: "UNSUPPORTED"},

		// Methods an endpoint does not have.
		{name: "POST to a manifest", method: "POST", path: "/v2/bad/repo/manifests/v1", status: 405, code: "UNSUPPORTED"},
		{name: "PATCH to a blob", method: "PATCH", path: "/v2/bad/repo/blobs/" + img.Layer.Digest, status: 405, code: "UNSUPPORTED"},
		{name: "PUT to tags/list", method: "PUT", path: "/v2/bad/repo/tags/list", status: 405, code: "UNSUPPORTED"},
		{name: "DELETE of the catalog", method: "DELETE", path: "/v2/_catalog", status: 405, code: "UNSUPPORTED"},
		{name: "POST to /v2/", method: "POST", path: "/v2/", status: 405, code: "UNSUPPORTED"},
		{name: "PUT to the upload start", method: "PUT", path: "/v2/bad/repo/blobs/uploads/", status: 405, code: "UNSUPPORTED"},
	}
	cases = append(cases, contentRangeCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.Replace(tc.path, "{session}", s.startUpload(t, "bad/repo"), 1)
			r := s.do(t, tc.method, path, tc.body, tc.headers...)
			if r.Status >= 500 {
				t.Fatalf("%s: a server error for a bad request", r)
			}
			if tc.method == http.MethodHead {
				wantStatus(t, r, tc.status)
				return
			}
			e := wantError(t, r, tc.status, tc.code)
			if tc.code == "MANIFEST_BLOB_UNKNOWN" && !bytes.Contains(e.Detail, []byte(`sha256:`)) {
				t.Errorf("%s: detail %s names no digest", r, e.Detail)
			}
			if tc.detail != "" && !bytes.Contains(e.Detail, []byte(tc.detail)) {
				t.Errorf("%s: detail %s does not name %s", r, e.Detail, tc.detail)
			}
		})
	}
	t.Run("detail names the missing blob", func(t *testing.T) {
		r := s.do(t, http.MethodPut, "/v2/bad/repo/manifests/missing", manifest(missing), "Content-Type", mediaTypeOCIManifest)
		if e := wantError(t, r, 400, "MANIFEST_BLOB_UNKNOWN"); !bytes.Contains(e.Detail, []byte(missing)) {
			t.Errorf("%s: detail %s does not name %s", r, e.Detail, missing)
		}
	})
	// Bodies larger than the socket buffers, refused before they are read:
	// the client is still sending when the server answers, and the answer
	// must reach it all the same, which it does not if the server closes
	// the connection with the body unread (the client's write then fails
	// with a reset).
	large := paddedManifest(t, img, 16<<20)
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		status             int
		code               string
	}{
		{"manifest of 16 MiB", "PUT", "/v2/bad/repo/manifests/huge", []string{"Content-Type", mediaTypeOCIManifest}, 413, "MANIFEST_INVALID"},
		{"16 MiB to an unknown session", "PATCH", "/v2/bad/repo/blobs/uploads/" + strings.Repeat("0", 32), nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"16 MiB chunk at the wrong offset", "PATCH", "{session}", []string{"Content-Range", contentRange(1, len(large)+1)}, 416, "BLOB_UPLOAD_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.Replace(tc.path, "{session}", s.startUpload(t, "bad/repo"), 1)
			r, err := s.try(t.Context(), tc.method, path, large, tc.headers...)
			if err != nil {
				t.Fatalf("the client got no answer: %v; want %d %s", err, tc.status, tc.code)
			}
			wantError(t, r, tc.status, tc.code)
		})
	}
	t.Run("manifest over 4 MiB streamed", func(t *testing.T) {
		// No Content-Length: the cap must hold on the bytes themselves.
		body := struct{ io.Reader }{bytes.NewReader(paddedManifest(t, img, 4<<20+1))}
		r := send(t, s.request(t, http.MethodPut, "/v2/bad/repo/manifests/huge", body, "Content-Type", mediaTypeOCIManifest))
		wantError(t, r, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID")
	})
	t.Run("manifest of exactly 4 MiB is accepted", func(t *testing.T) {
		body := paddedManifest(t, img, 4<<20)
		r := s.do(t, http.MethodPut, "/v2/bad/repo/manifests/big", body, "Content-Type", mediaTypeOCIManifest)
		wantStatus(t, r, http.StatusCreated)
	})
	t.Run("nothing was stored by the bad requests", func(t *testing.T) {
		r := s.do(t, http.MethodGet, "/v2/bad/repo/tags/list", nil)
		var list struct{ Tags []string }
		if err := json.Unmarshal(r.Body, &list); err != nil || strings.Join(list.Tags, ",") != "big,v1" {
			t.Errorf("%s: want tags big and v1 only (%v)", r, err)
		}
	})
	if lines := s.logLines("level=ERROR"); len(lines) != 0 {
		t.Errorf("the server logged errors:\n%s", strings.Join(lines, "\n"))
	}
}

// contentRangeCases are chunks whose Content-Range is malformed or does not
// match the 10-byte body or the empty session: 416 with BLOB_UPLOAD_INVALID.
func contentRangeCases() []badRequest {
	var out []badRequest
	for _, cr := range []string{"abc", "0-", "-9", "5-2", "0-99", "1-10", "bytes=0-9", "0-9/5"} {
		out = append(out, badRequest{name: "Content-Range " + cr, method: "PATCH", path: "{session}",
			headers: []string{"Content-Range", cr}, body: []byte("0123456789"), status: 416, code: "BLOB_UPLOAD_INVALID"})
	}
	return out
}

// indexOf returns an OCI index of the manifests with digests ds.
func indexOf(t testing.TB, ds ...string) []byte {
	t.Helper()
	var descs []descriptor
	for _, d := range ds {
		descs = append(descs, descriptor{MediaType: mediaTypeOCIManifest, Digest: d, Size: 100})
	}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeOCIIndex, "manifests": descs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ambiguousManifest has both an index's manifests and an image's layers and
// no mediaType of its own.
func ambiguousManifest(t testing.TB, img rawImage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"config":        img.Config,
		"layers":        []descriptor{img.Layer},
		"manifests":     []descriptor{{MediaType: mediaTypeOCIManifest, Digest: img.Digest, Size: int64(len(img.Manifest))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// paddedManifest is img's manifest with an annotation that makes it exactly
// size bytes long.
func paddedManifest(t testing.TB, img rawImage, size int) []byte {
	t.Helper()
	base := ociManifest(t, img.Config, []descriptor{img.Layer}, "pad", "")
	pad := size - len(base)
	if pad < 0 {
		t.Fatalf("manifest is already %d bytes", len(base))
	}
	b := ociManifest(t, img.Config, []descriptor{img.Layer}, "pad", strings.Repeat("p", pad))
	if len(b) != size {
		t.Fatalf("padded manifest is %d bytes, want %d", len(b), size)
	}
	return b
}

// TestBadInput_CrashDuringUpload kills the server (SIGKILL) while two large
// uploads stream in, restarts it on the same data directory, and checks that
// neither upload became a visible blob, that everything acknowledged before
// the kill is still there, and that the sessions resume to a correct blob.
func TestBadInput_CrashDuringUpload(t *testing.T) {
	data := t.TempDir()
	s := startRegistry(t, data)

	// Acknowledged before the crash: an image pushed raw, one pushed by
	// go-containerregistry, and the first chunk of an unfinished upload.
	acked := s.pushRawImage(t, "crash/raw", "v1", 51, 1<<20)
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "crash/ggcr:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	chunked := seededBytes(52, 2<<20)
	chunkedLoc := s.startUpload(t, "crash/raw")
	r := s.do(t, http.MethodPatch, chunkedLoc, chunked[:1<<20], "Content-Range", contentRange(0, 1<<20))
	wantStatus(t, r, http.StatusAccepted)
	chunkedLoc = r.Header.Get("Location")

	// In flight at the crash: a monolithic POST and a streamed PATCH, each
	// stopped by its client after 8 MiB of 64.
	const size, sent = 64 << 20, 8 << 20
	big := seededBytes(53, size)
	bigDigest := sha256Digest(big)
	streamLoc := s.startUpload(t, "crash/stream")
	monolithic := s.request(t, http.MethodPost, "/v2/crash/mono/blobs/uploads/?digest="+bigDigest, nil)
	streamed := s.request(t, http.MethodPatch, streamLoc, nil)
	var clients sync.WaitGroup
	var bodies []*io.PipeWriter
	for _, req := range []*http.Request{monolithic, streamed} {
		body, w := io.Pipe()
		req.Body, req.ContentLength = body, int64(size)
		bodies = append(bodies, w)
		clients.Go(func() {
			if resp, err := httpClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		// The rest never comes: the server is killed waiting for it.
		go w.Write(big[:sent])
	}
	// The client goroutines end once their bodies fail, whatever happens.
	defer clients.Wait()
	defer func() {
		for _, w := range bodies {
			w.CloseWithError(errors.New("upload abandoned by the test"))
		}
	}()
	waitForUploadBytes(t, data, 2*sent)
	s.kill()

	s = startRegistry(t, data)
	t.Run("interrupted uploads are not blobs", func(t *testing.T) {
		for _, repo := range []string{"crash/mono", "crash/stream"} {
			wantError(t, s.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+bigDigest, nil), http.StatusNotFound, "BLOB_UNKNOWN")
		}
		if _, err := os.Stat(filepath.Join(data, "blobs", "sha256", bigDigest[7:9], bigDigest[7:])); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a blob file exists for the interrupted upload (%v)", err)
		}
	})
	t.Run("acknowledged content survives", func(t *testing.T) {
		r := s.do(t, http.MethodGet, "/v2/crash/raw/manifests/v1", nil, "Accept", mediaTypeOCIManifest)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, acked.Manifest) {
			t.Errorf("%s: want the acknowledged manifest", r)
		}
		for _, d := range []string{acked.Config.Digest, acked.Layer.Digest} {
			if r := s.do(t, http.MethodGet, "/v2/crash/raw/blobs/"+d, nil); r.Status != http.StatusOK || sha256Digest(r.Body) != d {
				t.Errorf("%s: want blob %s", r, d)
			}
		}
		got, err := remote.Image(s.ref(t, "crash/ggcr:v1"), remoteOptions(t)...)
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("validate: %v", err)
		}
	})
	t.Run("acknowledged chunk survives", func(t *testing.T) {
		if got := s.uploadOffset(t, chunkedLoc); got != 1<<20 {
			t.Fatalf("upload holds %d bytes after the restart, want the acknowledged %d", got, 1<<20)
		}
		finishUpload(t, s, "crash/raw", chunkedLoc, chunked, 1<<20)
	})
	t.Run("interrupted session resumes", func(t *testing.T) {
		offset := s.uploadOffset(t, streamLoc)
		if offset > sent {
			t.Fatalf("upload holds %d bytes, more than the %d sent", offset, sent)
		}
		finishUpload(t, s, "crash/stream", streamLoc, big, offset)
	})
}

// waitForUploadBytes polls DATA/uploads until its files hold at least n
// bytes: the server has received that much of the uploads in flight.
func waitForUploadBytes(t testing.TB, data string, n int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var total int64
		entries, _ := os.ReadDir(filepath.Join(data, "uploads"))
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads/ holds %d bytes after 15s, want %d", total, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finishUpload sends content[offset:] to the session at loc, closes it with
// content's digest and checks that repo serves content.
func finishUpload(t testing.TB, s *server, repo, loc string, content []byte, offset int) {
	t.Helper()
	d := sha256Digest(content)
	r := s.do(t, http.MethodPut, withQuery(loc, "digest", d), content[offset:],
		"Content-Range", contentRange(offset, len(content)))
	wantStatus(t, r, http.StatusCreated)
	got := s.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil)
	if got.Status != http.StatusOK || !bytes.Equal(got.Body, content) {
		t.Errorf("%s: %d bytes, want the %d pushed", got, len(got.Body), len(content))
	}
}

// TestBadInput_StalledConnections opens connections that never make an HTTP
// request: a TLS handshake on the plain port, which every client that
// probes https first sends (go-containerregistry, containers/image as in
// skopeo and podman), and a connection that sends nothing, which HTTP
// clients keep in their pools. Neither may hang the client or keep the
// server from shutting down.
func TestBadInput_StalledConnections(t *testing.T) {
	t.Run("TLS handshake is refused at once", func(t *testing.T) {
		s := startServer(t, "")
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		err = tls.Client(conn, &tls.Config{ServerName: "localhost"}).HandshakeContext(ctx)
		if err == nil {
			t.Fatal("TLS handshake with a plain HTTP port succeeded")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("TLS handshake got no answer in %v: the server neither answers nor closes the connection, "+
				"so clients that try https first wait out their handshake timeout (10 s in Go's and containers/image's transports)",
				time.Since(start).Round(time.Millisecond))
		}
	})
	t.Run("shutdown does not wait for a connection without a request", func(t *testing.T) {
		s := startServer(t, "")
		conn, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A request on another connection shows the server is serving,
		// so the silent connection has surely been accepted.
		wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil), http.StatusOK)
		httpClient.CloseIdleConnections()
		start := time.Now()
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Errorf("berth still running %v after SIGINT while a client holds a connection that sent no request",
				time.Since(start).Round(time.Millisecond))
			s.kill()
		}
	})
}
