package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// logRecord is one JSON access-log line.
type logRecord struct {
	Level    string  `json:"level"`
	Msg      string  `json:"msg"`
	Method   string  `json:"method"`
	Route    string  `json:"route"`
	Repo     string  `json:"repo"`
	Path     string  `json:"path"`
	Status   int     `json:"status"`
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	Duration float64 `json:"duration"`
	User     string  `json:"user"`
	Remote   string  `json:"remote"`
}

func requestRecords(t *testing.T, logs *bytes.Buffer) []logRecord {
	t.Helper()
	var out []logRecord
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if r.Msg == "request" {
			out = append(out, r)
		}
	}
	return out
}

// TestAccessLog signs in every way a client can, pushes a manifest, and
// checks each request's line, and that no password or token appears in
// the log at any level.
func TestAccessLog(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const password = "pa55-Sekr1t-in-the-log?"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(store.User{Name: "alice", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	svc, err := auth.NewService(st, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, Config{Auth: svc, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	// GET /token with Basic, asking for a refresh token too.
	req := httptest.NewRequest(http.MethodGet, "/token?service=berth&offline_token=true&scope=repository:alice/app:pull,push", nil)
	req.Header.Set("Authorization", basicAuth("alice", password))
	_, body := do(t, s, req)
	var tok struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" || tok.RefreshToken == "" {
		t.Fatalf("token response: %s", body)
	}
	// POST /token: the password and the refresh token grants.
	for _, form := range []url.Values{
		{"grant_type": {"password"}, "username": {"alice"}, "password": {password}, "service": {"berth"}},
		{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "service": {"berth"}},
	} {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		do(t, s, req)
	}
	// A push with the Bearer token, and a wrong password with Basic.
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	req = httptest.NewRequest(http.MethodPost, "/v2/alice/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	do(t, s, req)
	req = httptest.NewRequest(http.MethodPut, "/v2/alice/app/manifests/v1", bytes.NewReader(manifest))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	do(t, s, req)
	req = httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.Header.Set("Authorization", basicAuth("alice", "wrong-"+password))
	do(t, s, req)
	do(t, s, httptest.NewRequest(http.MethodGet, "/healthz", nil))

	for _, secret := range []string{password, tok.Token, tok.RefreshToken, "wrong-" + password} {
		if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), url.QueryEscape(secret)) {
			t.Errorf("the log holds a secret (%.12s...):\n%s", secret, logs)
		}
	}

	got := requestRecords(t, logs)
	want := []logRecord{
		{Level: "INFO", Method: "GET", Route: "token", Path: "/token", Status: 200, User: "alice"},
		{Level: "INFO", Method: "POST", Route: "token", Path: "/token", Status: 200, User: "alice"},
		{Level: "INFO", Method: "POST", Route: "token", Path: "/token", Status: 200, User: ""},
		{Level: "INFO", Method: "POST", Route: "upload_start", Repo: "alice/app", Path: "/v2/alice/app/blobs/uploads/", Status: 201, User: "alice", BytesIn: 2},
		{Level: "INFO", Method: "PUT", Route: "manifest", Repo: "alice/app", Path: "/v2/alice/app/manifests/v1", Status: 201, User: "alice", BytesIn: int64(len(manifest))},
		{Level: "INFO", Method: "GET", Route: "base", Path: "/v2/", Status: 401, User: "alice"},
		{Level: "DEBUG", Method: "GET", Route: "healthz", Path: "/healthz", Status: 200, BytesOut: 3},
	}
	if len(got) != len(want) {
		t.Fatalf("%d request lines, want %d:\n%s", len(got), len(want), logs)
	}
	for i, w := range want {
		g := got[i]
		if g.Remote != "0.0.0.0" || g.Duration <= 0 {
			t.Errorf("line %d: remote %q duration %v, want 0.0.0.0 and a duration", i, g.Remote, g.Duration)
		}
		g.Remote, g.Duration, g.Msg = "", 0, ""
		if w.BytesOut == 0 {
			g.BytesOut = 0 // response sizes vary with tokens and error bodies
		}
		if w.BytesIn == 0 {
			g.BytesIn = 0 // form sizes vary with the token in them
		}
		if g != w {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}
