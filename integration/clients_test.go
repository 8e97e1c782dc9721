package integration

// Helpers for the client tests: references and options for
// go-containerregistry, a small raw net/http client that keeps status,
// headers and body together, the OCI error envelope, and deterministic
// content from a seed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry is startServer for the client tests. When the test ends,
// the clients' spare connections are closed before the server is stopped:
// Go's transport keeps connections it dialed but never used, and berth's
// shutdown waits for connections that never sent a request
// (TestBadInput_StalledConnections is the test of that).
func startRegistry(t testing.TB, data string, args ...string) *server {
	t.Helper()
	s := startServer(t, data, args...)
	t.Cleanup(func() {
		plainTransport.CloseIdleConnections()
		httpClient.CloseIdleConnections()
	})
	return s
}

// ref parses "repo:tag" or "repo@digest" as an image reference on s;
// repoRef parses a repository name.
func (s *server) ref(t testing.TB, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.Addr+"/"+r, name.Insecure, name.StrictValidation)
	if err != nil {
		t.Fatalf("parse reference %q: %v", r, err)
	}
	return ref
}

func (s *server) repoRef(t testing.TB, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s.Addr+"/"+repo, name.Insecure, name.StrictValidation)
	if err != nil {
		t.Fatalf("parse repository %q: %v", repo, err)
	}
	return r
}

// remoteOptions are the go-containerregistry options every test uses. Its
// retries are off: a retried 5xx or a reconnect would hide a server fault
// that a test is there to see.
func remoteOptions(t testing.TB, extra ...remote.Option) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(t.Context()),
		remote.WithTransport(plainTransport),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}, extra...)
}

// plainTransport is go-containerregistry's transport for these tests. For
// an insecure registry the library first tries https and falls back to
// http; a TLS dial that fails at once makes the fallback immediate. With
// its default transport the abandoned TLS handshake would linger on a
// server connection for the transport's 10 s handshake timeout
// (TestBadInput_StalledConnections covers what the server does with such a
// connection).
var plainTransport = &http.Transport{
	DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("the integration tests speak plain HTTP to berth")
	},
	MaxIdleConnsPerHost: 64,
}

// httpClient is the raw client: its own connection pool, so that a test
// that breaks a connection on purpose leaves no broken one for others.
var httpClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	Timeout:   2 * time.Minute,
	// A Location is data the tests check, not something to follow.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// reply is a whole HTTP response, body read.
type reply struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	body := string(r.Body)
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return r.Method + " " + r.URL + " -> " + http.StatusText(r.Status) + " " + body
}

// request builds a request to path on s. body may be nil; a *bytes.Reader
// or *bytes.Buffer gives a Content-Length, any other reader is sent with
// chunked encoding. headers are name, value pairs.
func (s *server) request(t testing.TB, method, path string, body io.Reader, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL(path), body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// send sends req and reads the whole answer. A transport error fails the
// test.
func send(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return reply{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// do sends a request with body bytes (nil for none) and reads the answer.
func (s *server) do(t testing.TB, method, path string, body []byte, headers ...string) reply {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return send(t, s.request(t, method, path, r, headers...))
}

// try is do for goroutines other than the test's own, which must not call
// t.Fatal: it returns transport errors instead.
func (s *server) try(ctx context.Context, method, path string, body []byte, headers ...string) (reply, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL(path), r)
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return reply{Method: method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// errorCode returns the code of the first entry of r's error envelope, or
// "" when the body is not one.
func errorCode(r reply) string {
	var env struct {
		Errors []errorEntry `json:"errors"`
	}
	if json.Unmarshal(r.Body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

// specCodes are the error codes of the distribution spec ("Error Codes").
var specCodes = []string{
	"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
	"MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
	"NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
}

// errorEntry is one entry of the spec's error envelope.
type errorEntry struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail"`
}

// errorEntries decodes the {"errors":[...]} envelope of r, failing the test
// when the body is not one or holds no entry.
func errorEntries(t testing.TB, r reply) []errorEntry {
	t.Helper()
	var env struct {
		Errors []errorEntry `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("%s: body is not an OCI error envelope (err %v)", r, err)
	}
	return env.Errors
}

// wantError checks r's status and, except for HEAD, that the first error
// entry has code.
func wantError(t testing.TB, r reply, status int, code string) errorEntry {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d with %s", r, r.Status, status, code)
	}
	if r.Method == http.MethodHead {
		if len(r.Body) != 0 {
			t.Errorf("%s: HEAD answer has a body", r)
		}
		return errorEntry{}
	}
	e := errorEntries(t, r)[0]
	if e.Code != code {
		t.Fatalf("%s: code %q, want %q", r, e.Code, code)
	}
	if !slices.Contains(specCodes, e.Code) {
		t.Errorf("%s: code %q is not one of the spec's codes", r, e.Code)
	}
	return e
}

// wantStatus fails the test unless r has status.
func wantStatus(t testing.TB, r reply, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d", r, r.Status, status)
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func sha512Digest(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(sum[:])
}

// seededReader returns size bytes that depend only on seed: large blobs
// generated in the test instead of held in memory or checked in.
func seededReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// seededBytes returns the bytes of seededReader(seed, size).
func seededBytes(seed uint64, size int) []byte {
	b, _ := io.ReadAll(seededReader(seed, int64(size)))
	return b
}

// pushBlob uploads content to repo in one monolithic POST and returns its
// sha256 digest.
func (s *server) pushBlob(t testing.TB, repo string, content []byte) string {
	t.Helper()
	d := sha256Digest(content)
	r := s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, content,
		"Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusCreated)
	if got := r.Header.Get("Docker-Content-Digest"); got != d {
		t.Fatalf("%s: Docker-Content-Digest %q, want %q", r, got, d)
	}
	return d
}

// startUpload opens an upload session in repo and returns its Location path.
func (s *server) startUpload(t testing.TB, repo string) string {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
		t.Fatalf("%s: Location %q is not an upload of %s", r, loc, repo)
	}
	return loc
}

// withQuery appends name=value to a Location that may already have a query.
func withQuery(loc, name, value string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + name + "=" + value
}

// descriptor is an OCI content descriptor, as the raw tests write them.
type descriptor struct {
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	ArtifactType string `json:"artifactType,omitempty"`
}

const (
	mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar"
)

// ociManifest returns an OCI image manifest of config and layers, with
// annotations when any are given as name, value pairs.
func ociManifest(t testing.TB, config descriptor, layers []descriptor, annotations ...string) []byte {
	t.Helper()
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeOCIManifest,
		"config":        config,
		"layers":        layers,
	}
	if len(annotations) > 0 {
		a := map[string]string{}
		for i := 0; i+1 < len(annotations); i += 2 {
			a[annotations[i]] = annotations[i+1]
		}
		m["annotations"] = a
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawImage is an image pushed through the raw client.
type rawImage struct {
	Config, Layer descriptor
	Manifest      []byte
	Digest        string
}

// pushRawImage pushes a config and one layer of layerSize seeded bytes to
// repo, then a manifest under ref (a tag or "" for by digest), and returns
// what it pushed.
func (s *server) pushRawImage(t testing.TB, repo, ref string, seed uint64, layerSize int) rawImage {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := seededBytes(seed, layerSize)
	img := rawImage{
		Config: descriptor{MediaType: mediaTypeOCIConfig, Digest: s.pushBlob(t, repo, config), Size: int64(len(config))},
		Layer:  descriptor{MediaType: mediaTypeOCILayer, Digest: s.pushBlob(t, repo, layer), Size: int64(len(layer))},
	}
	img.Manifest = ociManifest(t, img.Config, []descriptor{img.Layer}, "seed", strconv.FormatUint(seed, 10))
	img.Digest = sha256Digest(img.Manifest)
	if ref == "" {
		ref = img.Digest
	}
	r := s.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, img.Manifest, "Content-Type", mediaTypeOCIManifest)
	wantStatus(t, r, http.StatusCreated)
	if got := r.Header.Get("Docker-Content-Digest"); got != img.Digest {
		t.Fatalf("%s: Docker-Content-Digest %q, want %q", r, got, img.Digest)
	}
	return img
}

// The upload protocol through the raw client: what no library client
// exercises on purpose (sha512, a broken chunk, out-of-order chunks).

func TestUpload_SHA512(t *testing.T) {
	s := startRegistry(t, "")
	content := seededBytes(7, 300<<10+13)
	d := sha512Digest(content)
	const chunk = 100 << 10
	for _, tc := range []struct {
		name string
		push func(t *testing.T, repo string) reply
	}{
		{"monolithic POST", func(t *testing.T, repo string) reply {
			return s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, content,
				"Content-Type", "application/octet-stream")
		}},
		{"POST then PUT", func(t *testing.T, repo string) reply {
			loc := s.startUpload(t, repo)
			return s.do(t, http.MethodPut, withQuery(loc, "digest", d), content,
				"Content-Type", "application/octet-stream")
		}},
		{"chunked", func(t *testing.T, repo string) reply {
			loc := s.startUpload(t, repo)
			for start := 0; start+chunk < len(content); start += chunk {
				r := s.do(t, http.MethodPatch, loc, content[start:start+chunk],
					"Content-Range", contentRange(start, start+chunk), "Content-Type", "application/octet-stream")
				wantStatus(t, r, http.StatusAccepted)
				if got, want := r.Header.Get("Range"), contentRange(0, start+chunk); got != want {
					t.Fatalf("%s: Range %q, want %q", r, got, want)
				}
				loc = r.Header.Get("Location")
			}
			last := len(content) / chunk * chunk
			return s.do(t, http.MethodPut, withQuery(loc, "digest", d), content[last:],
				"Content-Range", contentRange(last, len(content)), "Content-Type", "application/octet-stream")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "sha512/" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-")
			r := tc.push(t, repo)
			wantStatus(t, r, http.StatusCreated)
			if got := r.Header.Get("Docker-Content-Digest"); got != d {
				t.Errorf("%s: Docker-Content-Digest %q, want %s", r, got, d)
			}
			if loc := r.Header.Get("Location"); loc != "/v2/"+repo+"/blobs/"+d {
				t.Errorf("%s: Location %q, want /v2/%s/blobs/%s", r, loc, repo, d)
			}
			got := s.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil)
			wantStatus(t, got, http.StatusOK)
			if !bytes.Equal(got.Body, content) || got.Header.Get("Docker-Content-Digest") != d {
				t.Errorf("%s: %d bytes, Docker-Content-Digest %q; want the %d bytes pushed, %s",
					got, len(got.Body), got.Header.Get("Docker-Content-Digest"), len(content), d)
			}
		})
	}
	t.Run("manifest by sha512 digest", func(t *testing.T) {
		config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		configDigest := sha512Digest(config)
		wantStatus(t, s.do(t, http.MethodPost, "/v2/sha512/manifest/blobs/uploads/?digest="+configDigest, config), http.StatusCreated)
		wantStatus(t, s.do(t, http.MethodPost, "/v2/sha512/manifest/blobs/uploads/?digest="+d, content), http.StatusCreated)
		body := ociManifest(t, descriptor{MediaType: mediaTypeOCIConfig, Digest: configDigest, Size: int64(len(config))},
			[]descriptor{{MediaType: mediaTypeOCILayer, Digest: d, Size: int64(len(content))}})
		md := sha512Digest(body)
		r := s.do(t, http.MethodPut, "/v2/sha512/manifest/manifests/"+md, body, "Content-Type", mediaTypeOCIManifest)
		wantStatus(t, r, http.StatusCreated)
		if got := r.Header.Get("Docker-Content-Digest"); got != md {
			t.Errorf("%s: Docker-Content-Digest %q, want %s", r, got, md)
		}
		got := s.do(t, http.MethodGet, "/v2/sha512/manifest/manifests/"+md, nil, "Accept", mediaTypeOCIManifest)
		wantStatus(t, got, http.StatusOK)
		if !bytes.Equal(got.Body, body) || got.Header.Get("Docker-Content-Digest") != md {
			t.Errorf("%s: body or Docker-Content-Digest %q differ from what was pushed (%s)", got, got.Header.Get("Docker-Content-Digest"), md)
		}
	})
}

// contentRange formats the spec's inclusive "<start>-<end>" for the bytes
// [start, end).
func contentRange(start, end int) string {
	return strconv.Itoa(start) + "-" + strconv.Itoa(end-1)
}

// brokenBody sends n bytes of data and then fails, as a client whose source
// breaks mid-upload would.
type brokenBody struct {
	data []byte
	n    int
}

var errBrokenBody = errors.New("body broken on purpose")

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errBrokenBody
	}
	m := copy(p[:min(len(p), b.n)], b.data)
	b.data, b.n = b.data[m:], b.n-m
	return m, nil
}

// uploadOffset asks for the status of the upload at loc and returns how
// many bytes it holds, from the Range header.
func (s *server) uploadOffset(t testing.TB, loc string) int {
	t.Helper()
	r := s.do(t, http.MethodGet, loc, nil)
	wantStatus(t, r, http.StatusNoContent)
	rng := r.Header.Get("Range")
	first, last, ok := strings.Cut(rng, "-")
	end, err := strconv.Atoi(last)
	if !ok || first != "0" || err != nil {
		t.Fatalf("%s: Range %q is not 0-<end>", r, rng)
	}
	// An empty session reports 0-0 like registry:2; a one-byte one
	// does too, which the tests here never create.
	if end == 0 {
		return 0
	}
	return end + 1
}

// TestUpload_ResumeInterrupted breaks a chunk midway, then resumes from the
// offset the server reports.
func TestUpload_ResumeInterrupted(t *testing.T) {
	s := startRegistry(t, "")
	content := seededBytes(11, 3<<20)
	const first, sentBeforeBreak = 1 << 20, 768 << 10
	loc := s.startUpload(t, "resume/x")
	r := s.do(t, http.MethodPatch, loc, content[:first],
		"Content-Range", contentRange(0, first), "Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusAccepted)
	loc = r.Header.Get("Location")

	broken := s.request(t, http.MethodPatch, loc, &brokenBody{data: content[first:], n: sentBeforeBreak},
		"Content-Range", contentRange(first, len(content)), "Content-Type", "application/octet-stream")
	broken.ContentLength = int64(len(content) - first)
	if resp, err := httpClient.Do(broken); err == nil {
		resp.Body.Close()
		t.Fatalf("PATCH with a broken body succeeded with %s", resp.Status)
	}

	// The server may still be recording the broken chunk when the status
	// is read; it then refuses the resumed chunk with 416 and the client
	// asks again. Each refusal means the offset moved, so few are needed.
	resumed := false
	for attempt := 0; attempt < 5 && !resumed; attempt++ {
		offset := s.uploadOffset(t, loc)
		if offset < first || offset > first+sentBeforeBreak {
			t.Fatalf("upload reports %d bytes after a %d-byte chunk and a chunk broken after %d bytes",
				offset, first, sentBeforeBreak)
		}
		t.Logf("attempt %d: resuming at %d (%d bytes of the broken chunk kept)", attempt, offset, offset-first)
		r := s.do(t, http.MethodPatch, loc, content[offset:],
			"Content-Range", contentRange(offset, len(content)), "Content-Type", "application/octet-stream")
		if r.Status == http.StatusRequestedRangeNotSatisfiable {
			wantError(t, r, r.Status, "BLOB_UPLOAD_INVALID")
			continue
		}
		wantStatus(t, r, http.StatusAccepted)
		resumed = true
	}
	if !resumed {
		t.Fatal("could not resume the upload in 5 attempts")
	}
	d := sha256Digest(content)
	wantStatus(t, s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil), http.StatusCreated)
	got := s.do(t, http.MethodGet, "/v2/resume/x/blobs/"+d, nil)
	wantStatus(t, got, http.StatusOK)
	if !bytes.Equal(got.Body, content) {
		t.Errorf("pulled %d bytes that differ from the %d pushed", len(got.Body), len(content))
	}
}

// TestUpload_ChunkOutOfOrder sends chunks that do not start where the
// upload ends: 416 with the code in the body and the real offset in Range,
// and the session stays usable.
func TestUpload_ChunkOutOfOrder(t *testing.T) {
	s := startRegistry(t, "")
	content := seededBytes(3, 300)
	loc := s.startUpload(t, "order/x")
	wantStatus(t, s.do(t, http.MethodPatch, loc, content[:100], "Content-Range", "0-99"), http.StatusAccepted)
	for _, tc := range []struct {
		name       string
		start, end int
	}{
		{"overlap", 50, 150},
		{"gap", 200, 300},
		{"from zero again", 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, http.MethodPatch, loc, content[tc.start:tc.end], "Content-Range", contentRange(tc.start, tc.end))
			wantError(t, r, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
			if got := r.Header.Get("Range"); got != "0-99" {
				t.Errorf("%s: Range %q, want 0-99 (where the upload is)", r, got)
			}
			if got := s.uploadOffset(t, loc); got != 100 {
				t.Errorf("after a refused chunk the upload holds %d bytes, want 100", got)
			}
		})
	}
	wantStatus(t, s.do(t, http.MethodPatch, loc, content[100:], "Content-Range", "100-299"), http.StatusAccepted)
	d := sha256Digest(content)
	wantStatus(t, s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil), http.StatusCreated)
	if got := s.do(t, http.MethodGet, "/v2/order/x/blobs/"+d, nil); !bytes.Equal(got.Body, content) {
		t.Errorf("%s: blob differs from what was pushed", got)
	}
}
