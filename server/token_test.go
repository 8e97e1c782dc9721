package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// TestPostToken_FormBodyIsCapped sends token requests whose form is over
// maxFormSize, with a length and chunked: each is refused with 413 instead
// of being read whole into memory.
func TestPostToken_FormBodyIsCapped(t *testing.T) {
	s := newTokenServer(t)
	big := "grant_type=password&username=a&password=" + strings.Repeat("x", maxFormSize)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req := httptest.NewRequest(http.MethodPost, "/token", body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		resp, got := do(t, s, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked=%v: status %d, want 413; body %s", chunked, resp.StatusCode, got)
		}
		if code := errorCode(t, got); code != "SIZE_INVALID" {
			t.Fatalf("chunked=%v: code %s, want SIZE_INVALID", chunked, code)
		}
	}
}

// TestToken_BadRequests: a token request the endpoint cannot read is the
// client's mistake, 400 in RFC 6749's form (invalid_request,
// unsupported_grant_type), never 405, which says the endpoint is not
// offered; and no token is issued.
func TestToken_BadRequests(t *testing.T) {
	s := newTokenServer(t)
	tests := []struct {
		name, method, target, form string
		want                       string
	}{
		{"GET malformed scope", http.MethodGet, "/token?service=berth&scope=repository", "", "invalid_request"},
		{"GET unknown resource type", http.MethodGet, "/token?service=berth&scope=" + "nonsense:x:pull:extra:y", "", "invalid_request"},
		{"POST malformed scope", http.MethodPost, "/token", "grant_type=password&username=a&password=b&scope=repository", "invalid_request"},
		{"POST unknown grant_type", http.MethodPost, "/token", "grant_type=client_credentials&client_id=x", "unsupported_grant_type"},
		{"POST no grant_type", http.MethodPost, "/token", "username=a&password=b", "unsupported_grant_type"},
		{"POST malformed form", http.MethodPost, "/token", "grant_type=password&%zz", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.form))
			if tc.method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, body := do(t, s, req)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", resp.StatusCode, body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Token       string `json:"token"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.want || e.Description == "" || e.Token != "" {
				t.Fatalf("body %s (%v), want error %q with a description", body, err, tc.want)
			}
		})
	}
}

// newTokenServer is a server with token authentication on a new store.
func newTokenServer(t *testing.T) *Server {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := auth.NewService(st, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, Config{Auth: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return s
}
