package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/store"
)

// scrape returns the /metrics page of s.
func scrape(t *testing.T, s *Server) string {
	t.Helper()
	resp, body := do(t, s, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// metricValue returns the value of series (name and labels exactly as the
// text format prints them, labels sorted) in page, or -1 when absent.
func metricValue(t *testing.T, page, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: value %q", series, v)
			}
			return f
		}
	}
	return -1
}

// wantMetrics checks series → value in page.
func wantMetrics(t *testing.T, when, page string, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		if got := metricValue(t, page, series); got != v {
			t.Errorf("%s: %s = %v, want %v", when, series, got, v)
		}
	}
}

// chunked makes req's body go out with chunked transfer encoding, as
// docker sends layers.
func chunked(req *http.Request) *http.Request {
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	return req
}

func TestMetrics_RequestsBytesAndStorage(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "v9.9.9"})

	wantMetrics(t, "at start", scrape(t, s), map[string]float64{
		`berth_build_info{version="v9.9.9"}`: 1,
		"berth_storage_blobs":                0,
		"berth_uploads_in_progress":          0,
		// Go runtime metrics come from the default gatherer.
		`go_info{version="` + goVersion(t, scrape(t, s)) + `"}`: 1,
	})

	blob := bytes.Repeat([]byte("berth metrics "), 100)
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	resp, _ := do(t, s, httptest.NewRequest(http.MethodPost, "/v2/m/app/blobs/uploads/", nil))
	loc := resp.Header.Get("Location")
	do(t, s, chunked(httptest.NewRequest(http.MethodPatch, loc, bytes.NewReader(blob))))
	wantMetrics(t, "during the upload", scrape(t, s), map[string]float64{
		"berth_uploads_in_progress":      1,
		"berth_upload_bytes_in_progress": float64(len(blob)),
	})
	resp, _ = do(t, s, httptest.NewRequest(http.MethodPut, loc+"?digest="+digest, nil))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %d", resp.StatusCode)
	}
	do(t, s, httptest.NewRequest(http.MethodGet, "/v2/m/app/blobs/"+digest, nil))
	do(t, s, httptest.NewRequest(http.MethodHead, "/v2/m/app/blobs/"+digest, nil))
	do(t, s, httptest.NewRequest(http.MethodGet, "/v2/m/app/nonsense", nil))
	do(t, s, httptest.NewRequest(http.MethodGet, "/elsewhere", nil))

	wantMetrics(t, "after the push", scrape(t, s), map[string]float64{
		`berth_http_requests_total{code="202",method="POST",route="upload_start"}`: 1,
		`berth_http_requests_total{code="202",method="PATCH",route="upload"}`:      1,
		`berth_http_requests_total{code="201",method="PUT",route="upload"}`:        1,
		`berth_http_requests_total{code="200",method="GET",route="blob"}`:          1,
		`berth_http_requests_total{code="200",method="HEAD",route="blob"}`:         1,
		`berth_http_requests_total{code="404",method="GET",route="other"}`:         2,
		`berth_http_request_bytes_total{route="upload"}`:                           float64(len(blob)),
		// GET sends the blob; HEAD only its headers.
		`berth_http_response_bytes_total{route="blob"}`:                          float64(len(blob)),
		`berth_http_request_duration_seconds_count{method="PUT",route="upload"}`: 1,
		"berth_storage_blobs":            1,
		"berth_storage_blob_bytes":       float64(len(blob)),
		"berth_uploads_in_progress":      0,
		"berth_upload_bytes_in_progress": 0,
		// Only the scrape itself.
		"berth_http_requests_in_flight": 1,
	})
}

func goVersion(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `go_info{version="`)
	if !ok {
		t.Fatalf("no go_info in /metrics:\n%s", page)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// TestMetrics_AuthFailures sends requests that a client sees refused, and
// some that are part of the normal token dance, and checks which count.
func TestMetrics_AuthFailures(t *testing.T) {
	s, _, st := newServerWith(t, Config{})
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(store.User{Name: "alice", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	anonymousToken := func() string {
		_, body := do(t, s, httptest.NewRequest(http.MethodGet, "/token?service=berth", nil))
		var tok struct{ Token string }
		if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
			t.Fatalf("anonymous token: %s", body)
		}
		return tok.Token
	}()
	request := func(method, path, authorization string) *http.Request {
		req := httptest.NewRequest(method, path, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		return req
	}
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantReason string // "" for no failure
	}{
		{"anonymous challenge", request("GET", "/v2/", ""), 401, ""},
		{"wrong password", request("GET", "/v2/", basicAuth("alice", "wrong")), 401, "credentials"},
		{"unknown user at /token", request("GET", "/token?service=berth", basicAuth("mallory", "x")), 401, "credentials"},
		{"forged token", request("GET", "/v2/", "Bearer not.a.token"), 401, "token"},
		{"token lacks the scope", request("POST", "/v2/alice/app/blobs/uploads/", "Bearer "+anonymousToken), 401, ""},
		{"rules say no", request("POST", "/v2/bob/app/blobs/uploads/", basicAuth("alice", "alice-secret")), 403, "denied"},
		{"allowed", request("POST", "/v2/alice/app/blobs/uploads/", basicAuth("alice", "alice-secret")), 202, ""},
	}
	before := scrape(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, s, tc.req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s: %d %s, want %d", tc.req.Method, tc.req.URL, resp.StatusCode, body, tc.wantStatus)
			}
			after := scrape(t, s)
			for _, reason := range authFailureReasons {
				series := `berth_auth_failures_total{reason="` + reason + `"}`
				want := metricValue(t, before, series)
				if reason == tc.wantReason {
					want++
				}
				if got := metricValue(t, after, series); got != want {
					t.Errorf("%s %s: %s = %v, want %v", tc.req.Method, tc.req.URL, series, got, want)
				}
			}
			before = after
		})
	}
	t.Run("throttled", func(t *testing.T) {
		for range 6 {
			do(t, s, request("GET", "/v2/", basicAuth("alice", "wrong")))
		}
		if got := metricValue(t, scrape(t, s), `berth_auth_failures_total{reason="throttled"}`); got < 1 {
			t.Errorf("after 6 more wrong passwords: throttled = %v, want at least 1", got)
		}
	})
}
