package ui_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/server"
	"github.com/berth-registry/berth/store"
	"github.com/berth-registry/berth/ui"
)

// app is the registry with its UI, in process, under --auth none: every
// visitor may do everything, as on the API.
type app struct {
	t   testing.TB
	st  *store.Store
	srv *server.Server
}

func newApp(t testing.TB, st *store.Store) *app {
	t.Helper()
	web, err := ui.New(ui.Options{Store: st, Admin: &admin.Env{Store: st}})
	if err != nil {
		t.Fatal(err)
	}
	return &app{t: t, st: st, srv: server.New(st, server.Config{UI: web, Logger: discardLogger()})}
}

// get returns the status and body of GET path.
func (a *app) get(path string) (int, string) {
	a.t.Helper()
	return a.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (a *app) do(req *http.Request) (int, string) {
	a.t.Helper()
	resp, err := a.srv.App().Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// post sends a form with the double-submit CSRF token (cookie and field)
// unless token is "".
func (a *app) post(path string, form url.Values, token string) (int, string) {
	a.t.Helper()
	if token != "" {
		form.Set("csrf", token)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.AddCookie(&http.Cookie{Name: "berth_csrf", Value: token})
	}
	return a.do(req)
}

func TestUI_IndexPlatformsAndReferrers(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	amd := storetest.PushImage(t, st, "multi/app", "", nil, "amd layer")
	arm := storetest.PushImage(t, st, "multi/app", "", nil, "arm layer")
	amd["platform"] = map[string]any{"os": "linux", "architecture": "amd64"}
	arm["platform"] = map[string]any{"os": "linux", "architecture": "arm64", "variant": "v8"}
	idx := storetest.PushIndex(t, st, "multi/app", "latest", amd, arm)
	storetest.PushImage(t, st, "multi/app", "", idx, "an sbom")
	a := newApp(t, st)

	status, body := a.get("/ui/")
	if status != 200 || !strings.Contains(body, ">multi/app</a>") || !strings.Contains(body, " UTC</td>") {
		t.Fatalf("repository list (%d) lacks the repository or its last push:\n%s", status, body)
	}
	status, body = a.get("/ui/repo?name=multi/app")
	if status != 200 || !strings.Contains(body, "linux/amd64, linux/arm64/v8") || !strings.Contains(body, `<span class="badge">SBOM</span>`) {
		t.Fatalf("repository page (%d) lacks the platforms or the SBOM badge:\n%s", status, body)
	}
	status, body = a.get("/ui/image?name=multi/app&digest=" + string(storetest.Digest(idx)))
	if status != 200 || strings.Count(body, "/ui/image?name=multi%2fapp&digest=") < 3 {
		t.Fatalf("index page (%d) does not link its two children and its referrer:\n%s", status, body)
	}
	if status, _ := a.get("/ui/image?name=multi/app&digest=sha256:" + strings.Repeat("0", 64)); status != 404 {
		t.Errorf("unknown digest: status %d, want 404", status)
	}
	if status, _ := a.get("/ui/repo?name=" + url.QueryEscape("NOT VALID")); status != 404 {
		t.Errorf("invalid repository name: status %d, want 404", status)
	}
}

func TestUI_TagsPaged(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	d := storetest.PushImage(t, st, "many/tags", "t000", nil, "layer")
	body := mustManifest(t, st, "many/tags", storetest.Digest(d))
	var tags []string
	for i := 1; i < 60; i++ {
		tags = append(tags, fmt.Sprintf("t%03d", i))
	}
	if _, _, err := st.PutManifest("many/tags", store.Reference{Digest: storetest.Digest(d)}, tags, store.MediaTypeOCIManifest, body); err != nil {
		t.Fatal(err)
	}
	a := newApp(t, st)
	_, first := a.get("/ui/repo?name=many/tags")
	if n := strings.Count(first, `class="tag"`); n != 50 || !strings.Contains(first, "after=t049") {
		t.Fatalf("first page lists %d tags (want 50) or lacks the next link", n)
	}
	_, second := a.get("/ui/repo?name=many/tags&after=t049")
	if n := strings.Count(second, `class="tag"`); n != 10 || strings.Contains(second, `id="next"`) {
		t.Fatalf("second page lists %d tags (want 10) or has a next link", n)
	}
}

func TestUI_DeleteRepository(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	storetest.PushImage(t, st, "doomed/repo", "v1", nil, "doomed layer")
	a := newApp(t, st)
	token := strings.Repeat("ab", 32)
	if status, body := a.get("/ui/delete?name=doomed/repo"); status != 200 || !strings.Contains(body, "the repository doomed/repo") {
		t.Fatalf("confirm page (%d):\n%s", status, body)
	}
	if status, _ := a.post("/ui/delete", url.Values{"name": {"doomed/repo"}}, ""); status != 403 {
		t.Fatalf("POST without CSRF token: status %d, want 403", status)
	}
	if status, _ := a.post("/ui/delete", url.Values{"name": {"doomed/repo"}}, token); status != http.StatusSeeOther {
		t.Fatalf("confirmed delete: status %d, want 303", status)
	}
	if _, _, err := st.Tags("doomed/repo", "", 0); err == nil {
		t.Fatal("the repository survived its deletion")
	}
	if status, _ := a.post("/ui/delete", url.Values{"name": {"doomed/repo"}}, token); status != 404 {
		t.Errorf("deleting it again: status %d, want 404", status)
	}
}

func TestUI_AdminGCDryRun(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	storetest.PushImage(t, st, "x/y", "v1", nil, "kept")
	a := newApp(t, st)
	status, body := a.post("/ui/admin/gc", url.Values{"mode": {"dry-run"}}, strings.Repeat("cd", 32))
	if status != 200 || !strings.Contains(body, `id="output"`) {
		t.Fatalf("gc dry run (%d):\n%s", status, body)
	}
	if _, _, err := st.Tags("x/y", "", 0); err != nil {
		t.Fatalf("a dry run changed the store: %v", err)
	}
}

func mustManifest(t testing.TB, st *store.Store, repo string, d store.Digest) []byte {
	m, err := st.Manifest(repo, store.Reference{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestUI_LastPulled checks the repository page's last-pulled column: never
// before a pull, the time after one (a UI view is no pull).
func TestUI_LastPulled(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	storetest.PushImage(t, st, "pulled/app", "latest", nil, "layer")
	a := newApp(t, st)
	if _, body := a.get("/ui/repo?name=pulled/app"); !strings.Contains(body, "<th>Last pulled</th>") || !strings.Contains(body, `<td class="small">never</td>`) {
		t.Fatalf("before a pull the page does not say never:\n%s", body)
	}
	m, err := st.Manifest("pulled/app", store.Reference{Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	st.RecordPull("pulled/app", m.Digest)
	if _, body := a.get("/ui/repo?name=pulled/app"); strings.Contains(body, `<td class="small">never</td>`) {
		t.Fatalf("after a pull the page still says never:\n%s", body)
	}
}
