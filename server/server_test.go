package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// newTestServer serves a fresh store in-process, logging into logs.
func newTestServer(t *testing.T) (*Server, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	return New(st, Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}), logs
}

func do(t *testing.T, s *Server, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var env struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("body is not an OCI error envelope: %q", body)
	}
	return env.Errors[0].Code
}

func TestServer_PanicIsA500WithALogLine(t *testing.T) {
	s, logs := newTestServer(t)
	s.App().Get("/boom", func(*fiber.Ctx) error { panic("handler exploded") })
	resp, body := do(t, s, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if code := errorCode(t, body); code != "UNKNOWN" {
		t.Fatalf("code %s, want UNKNOWN", code)
	}
	if strings.Contains(string(body), "exploded") {
		t.Fatalf("the panic value leaked into the response: %s", body)
	}
	if !strings.Contains(logs.String(), "handler exploded") {
		t.Fatalf("no log line names the panic; log:\n%s", logs)
	}
	// The server still answers after the panic.
	resp, _ = do(t, s, httptest.NewRequest(http.MethodGet, "/v2/", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ after a panic: %d", resp.StatusCode)
	}
}

func TestServer_Base(t *testing.T) {
	s, _ := newTestServer(t)
	for _, path := range []string{"/v2/", "/v2"} {
		resp, _ := do(t, s, httptest.NewRequest(http.MethodGet, path, nil))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
			t.Errorf("GET %s: Docker-Distribution-API-Version %q", path, got)
		}
	}
}

func TestServer_Errors(t *testing.T) {
	s, _ := newTestServer(t)
	missing := store.DigestOf(store.SHA256, []byte("missing"))
	tests := []struct {
		name, method, path string
		body               string
		wantStatus         int
		wantCode           string // "" when a HEAD has no body
	}{
		{"BlobUnknown", "GET", "/v2/a/blobs/" + string(missing), "", 404, "BLOB_UNKNOWN"},
		{"HeadBlobUnknownHasNoBody", "HEAD", "/v2/a/blobs/" + string(missing), "", 404, ""},
		{"DigestInvalid", "GET", "/v2/a/blobs/sha256:nothex", "", 400, "DIGEST_INVALID"},
		{"NameInvalid", "GET", "/v2/Upper/tags/list", "", 400, "NAME_INVALID"},
		{"NameUnknown", "GET", "/v2/nobody/tags/list", "", 404, "NAME_UNKNOWN"},
		{"ManifestUnknown", "GET", "/v2/a/manifests/latest", "", 404, "MANIFEST_UNKNOWN"},
		{"UploadUnknown", "GET", "/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef", "", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"MethodNotAllowed", "PUT", "/v2/a/tags/list", "", 405, "UNSUPPORTED"},
		{"ManifestInvalid", "PUT", "/v2/a/manifests/latest", "{not json", 400, "MANIFEST_INVALID"},
		{"PaginationInvalid", "GET", "/v2/_catalog?n=-1", "", 400, "UNSUPPORTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", store.MediaTypeOCIManifest)
			}
			resp, body := do(t, s, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantCode == "" {
				if len(body) != 0 {
					t.Fatalf("%s %s: body %q, want none", tc.method, tc.path, body)
				}
				return
			}
			if code := errorCode(t, body); code != tc.wantCode {
				t.Fatalf("%s %s: code %s, want %s", tc.method, tc.path, code, tc.wantCode)
			}
		})
	}
}

// TestServer_MountFailureIsNotANewUpload: a mount whose store call fails
// for another reason than a missing blob answers with that failure; only a
// blob that is not there falls back to a new upload session, as the spec
// asks.
func TestServer_MountFailureIsNotANewUpload(t *testing.T) {
	s, logs := newTestServer(t)
	content := []byte("layer")
	d := store.DigestOf(store.SHA256, content)
	if _, err := s.store.PutBlob("src", d, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	missing := store.DigestOf(store.SHA256, []byte("not there"))
	resp, _ := do(t, s, httptest.NewRequest(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+string(missing)+"&from=src", nil))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("mount of a missing blob: status %d, want 202 (a new upload)", resp.StatusCode)
	}
	s.store.Close() // every store call fails from here
	resp, body := do(t, s, httptest.NewRequest(http.MethodPost, "/v2/dst/blobs/uploads/?mount="+string(d)+"&from=src", nil))
	if resp.StatusCode != http.StatusInternalServerError || errorCode(t, body) != "UNKNOWN" {
		t.Fatalf("mount on a failing store: status %d, body %s; want 500 UNKNOWN", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "mount blob "+string(d)) {
		t.Fatalf("the failure logged is not the mount's:\n%s", logs)
	}
}
