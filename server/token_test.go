package server

import (
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
