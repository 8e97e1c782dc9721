package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name       string
		breakIt    func(t *testing.T, s *Server)
		wantLive   int
		wantReady  int
		wantReason string
	}{
		{"OK", func(*testing.T, *Server) {}, 200, 200, "ready\n"},
		{"StoreClosed", func(t *testing.T, s *Server) { s.store.Close() }, 200, 503, "not ready: the data directory cannot be written\n"},
		{"UploadsNotWritable", func(t *testing.T, s *Server) {
			// A file where the directory was: nobody, root included, can
			// create entries in it.
			uploads := filepath.Join(s.store.Dir(), "uploads")
			if err := os.RemoveAll(uploads); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(uploads, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 200, 503, "not ready: the data directory cannot be written\n"},
		{"ShuttingDown", func(t *testing.T, s *Server) {
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, 200, 503, "shutting down\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, logs := newTestServer(t)
			tc.breakIt(t, s)
			resp, _ := do(t, s, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if resp.StatusCode != tc.wantLive {
				t.Errorf("GET /healthz: %d, want %d", resp.StatusCode, tc.wantLive)
			}
			resp, body := do(t, s, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if resp.StatusCode != tc.wantReady || string(body) != tc.wantReason {
				t.Errorf("GET /readyz: %d %q, want %d %q\nlog:\n%s", resp.StatusCode, body, tc.wantReady, tc.wantReason, logs)
			}
		})
	}
}
