package integration

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// page is a UI page fetched over plain HTTP and parsed.
type page struct {
	status int
	header http.Header
	doc    *html.Node
}

// getPage fetches path with the session cookie (nil: anonymous).
func getPage(t *testing.T, s *server, path string, cookie *http.Cookie) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return doPage(t, req)
}

func doPage(t *testing.T, req *http.Request) page {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := html.Parse(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: not HTML: %v", req.Method, req.URL, err)
	}
	return page{status: resp.StatusCode, header: resp.Header, doc: doc}
}

// find returns the elements named tag whose attribute attr contains sub
// (attr "" matches every element named tag).
func (p page) find(tag, attr, sub string) []*html.Node {
	var out []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag && (attr == "" || strings.Contains(attrOf(n, attr), sub)) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return out
}

func attrOf(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// textOf is the text content of n.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// formPost builds a form POST with the cookie and, when set, an Origin.
func formPost(t *testing.T, target string, form url.Values, cookie *http.Cookie, origin string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return req
}

// csrfOf returns the CSRF token the session's pages carry.
func csrfOf(t *testing.T, s *server, cookie *http.Cookie) string {
	p := getPage(t, s, "/ui/", cookie)
	for _, in := range p.find("input", "name", "csrf") {
		return attrOf(in, "value")
	}
	t.Fatal("no csrf field on /ui/")
	return ""
}

// signIn signs in through the form and returns the session cookie.
// signinCSRF fetches the sign-in form and returns the berth_csrf cookie it
// sets.
func signinCSRF(t *testing.T, s *server) *http.Cookie {
	t.Helper()
	resp, err := http.Get(s.URL("/ui/signin"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "berth_csrf" {
			return c
		}
	}
	t.Fatal("the sign-in form set no berth_csrf cookie")
	return nil
}

func signIn(t *testing.T, s *server, name, password string) *http.Cookie {
	t.Helper()
	pre := signinCSRF(t, s)
	req := formPost(t, s.URL("/ui/signin"), url.Values{"csrf": {pre.Value}, "name": {name}, "password": {password}}, pre, "http://"+s.Addr)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "berth_session" && c.Value != "" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want HttpOnly and SameSite=Strict", c)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatalf("sign in as %s: status %d, no session cookie", name, resp.StatusCode)
	return nil
}

func TestUI_SecurityHeaders(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	root := signIn(t, s, "admin", adminPW)
	for _, tc := range []struct {
		path   string
		cookie *http.Cookie
	}{
		{"/ui/", nil}, {"/ui/signin", nil}, {"/ui/admin", nil}, {"/ui/nope", nil},
		{"/ui/?sort=size", root}, {"/ui/admin", root}, {"/ui/admin/rules", root}, {"/ui/admin/gc", root},
		{"/ui/admin/storage", root}, {"/ui/admin/backups", root},
	} {
		path := tc.path
		p := getPage(t, s, path, tc.cookie)
		if tc.cookie != nil && p.status != http.StatusOK {
			t.Errorf("%s as admin: status %d", path, p.status)
		}
		csp := p.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, p.header)
		}
		if n := len(p.find("script", "", "")) + len(p.find("style", "", "")); n != 0 {
			t.Errorf("%s: %d inline script/style elements", path, n)
		}
	}
	resp, err := http.Get(s.URL("/ui/static/style.css"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Without --anonymous-pull anonymous sees nothing, and admin pages are
// refused to anonymous and to non-admins alike, page and POST.
func TestUI_Permissions(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	pushHostile(t, s, "web/app:v1", "admin", adminPW)
	pushHostile(t, s, "alice/own:v1", "alice", "alice-secret")

	for _, path := range []string{"/ui/", "/ui/?sort=size", "/ui/?sort=pushed"} {
		anon := getPage(t, s, path, nil)
		if n := len(anon.find("a", "class", "repo")); n != 0 {
			t.Errorf("anonymous without --anonymous-pull sees %d repositories at %s", n, path)
		}
	}
	if p := getPage(t, s, "/ui/repo?name=web/app", nil); p.status != http.StatusNotFound {
		t.Errorf("anonymous repository page: status %d, want 404", p.status)
	}
	if p := getPage(t, s, "/ui/admin", nil); p.status != http.StatusForbidden {
		t.Errorf("anonymous admin page: status %d, want 403", p.status)
	}

	alice := signIn(t, s, "alice", "alice-secret")
	list := getPage(t, s, "/ui/", alice)
	if n := len(list.find("a", "class", "repo")); n != 2 {
		t.Errorf("alice sees %d repositories, want 2 (signed-in users pull everything by default)", n)
	}
	if n := len(list.find("a", "href", "/ui/admin")); n != 0 {
		t.Error("alice is shown the admin link")
	}
	if p := getPage(t, s, "/ui/repo?name=alice/own", alice); len(p.find("a", "class", "danger")) == 0 {
		t.Error("alice is not offered to delete in her own repository")
	}
	if p := getPage(t, s, "/ui/repo?name=web/app", alice); len(p.find("a", "class", "danger")) != 0 {
		t.Error("alice is offered to delete in web/app")
	}
	if p := getPage(t, s, "/ui/delete?name=web/app&tag=v1", alice); p.status != http.StatusForbidden {
		t.Errorf("alice's delete confirm for web/app: status %d, want 403", p.status)
	}
	token := csrfOf(t, s, alice)
	origin := "http://" + s.Addr
	for path, form := range map[string]url.Values{
		"/ui/delete":           {"csrf": {token}, "name": {"web/app"}, "tag": {"v1"}},
		"/ui/admin/user/add":   {"csrf": {token}, "name": {"mallory"}, "password": {"x-secret"}},
		"/ui/admin/gc":         {"csrf": {token}, "mode": {"run"}},
		"/ui/admin/user/del":   {"csrf": {token}, "name": {"admin"}},
		"/ui/admin/rules/add":  {"csrf": {token}, "account": {"alice"}, "actions": {"*"}},
		"/ui/admin/user/admin": {"csrf": {token}, "name": {"alice"}},
		"/ui/admin/rules/move": {"csrf": {token}, "number": {"1"}, "to": {"1"}},
		"/ui/admin/backups":    {"csrf": {token}, "dir": {t.TempDir()}, "kind": {"full"}},
	} {
		if p := doPage(t, formPost(t, s.URL(path), form, alice, origin)); p.status != http.StatusForbidden {
			t.Errorf("alice POST %s: status %d, want 403", path, p.status)
		}
	}
	for _, path := range []string{"/ui/admin", "/ui/admin/rules", "/ui/admin/gc", "/ui/admin/storage", "/ui/admin/backups"} {
		if p := getPage(t, s, path, alice); p.status != http.StatusForbidden {
			t.Errorf("alice's %s: status %d, want 403", path, p.status)
		}
	}
	if out := s.berth(t, "", "user", "list"); regexpLine(out, `alice\s+yes`) {
		t.Fatalf("alice made herself admin: %s", out)
	}
	if tags := tagsList(t, s, "web/app", "admin", adminPW); !strings.Contains(tags, `"v1"`) {
		t.Fatalf("alice deleted web/app:v1: %s", tags)
	}
	if out := s.berth(t, "", "user", "list"); strings.Contains(out, "mallory") {
		t.Fatalf("alice added a user: %s", out)
	}

	// Alice may delete her own tag: the same rule as DELETE on the API.
	p := doPage(t, formPost(t, s.URL("/ui/delete"), url.Values{"csrf": {token}, "name": {"alice/own"}, "tag": {"v1"}}, alice, origin))
	if p.status != http.StatusSeeOther {
		t.Errorf("alice deletes alice/own:v1: status %d, want 303", p.status)
	}
	if tags := tagsList(t, s, "alice/own", "admin", adminPW); strings.Contains(tags, `"v1"`) {
		t.Errorf("alice/own:v1 survived its deletion: %s", tags)
	}

	// Signing out ends the session on the server, not only in the browser.
	if p := doPage(t, formPost(t, s.URL("/ui/signout"), url.Values{"csrf": {token}}, alice, origin)); p.status != http.StatusSeeOther {
		t.Errorf("sign out: status %d, want 303", p.status)
	}
	if p := getPage(t, s, "/ui/", alice); len(p.find("span", "class", "who")) != 0 {
		t.Error("the session outlived signing out")
	}

	// The user's deletion ends a session.
	alice = signIn(t, s, "alice", "alice-secret")
	if p := getPage(t, s, "/ui/", alice); len(p.find("span", "class", "who")) != 1 {
		t.Fatal("alice's new session is not signed in")
	}
	s.berth(t, "", "user", "del", "alice")
	if p := getPage(t, s, "/ui/", alice); len(p.find("span", "class", "who")) != 0 {
		t.Error("alice's session outlived her deletion")
	}
}

// The sign-in form shares /token's throttle: wrong passwords end in 429.
func TestUI_SigninThrottled(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	resp, err := http.Get(s.URL("/ui/signin"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pre := resp.Cookies()[0]
	statuses := map[int]int{}
	for i := 0; i < 10 && statuses[http.StatusTooManyRequests] == 0; i++ {
		p := doPage(t, formPost(t, s.URL("/ui/signin"), url.Values{"csrf": {pre.Value}, "name": {"admin"}, "password": {"wrong"}}, pre, ""))
		statuses[p.status]++
	}
	if statuses[http.StatusUnauthorized] == 0 || statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("wrong sign-ins answered %v, want 401s then 429", statuses)
	}
	// /token refuses the same account from the same address now.
	if r := s.getToken(t, "admin", adminPW, url.Values{"service": {"berth"}}); r.Status != http.StatusTooManyRequests {
		t.Errorf("/token after the UI's failures: status %d, want 429", r.Status)
	}
}

// An admin lists, adds and deletes access rules and asks the tester, which
// answers with the API's evaluation; the CLI sees the same rules.
func TestUI_AccessRules(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	admin := signIn(t, s, "admin", adminPW)
	token, origin := csrfOf(t, s, admin), "http://"+s.Addr
	p := doPage(t, formPost(t, s.URL("/ui/admin/rules/add"), url.Values{"csrf": {token}, "account": {"alice"}, "name": {"shared/*"}, "actions": {"pull,delete"}, "comment": {"<b>team</b>"}}, admin, origin))
	if p.status != http.StatusOK || len(p.find("table", "id", "rules")) != 1 {
		t.Fatalf("add rule: status %d", p.status)
	}
	if out := s.berth(t, "", "acl", "list"); !strings.Contains(out, "shared/*") || !strings.Contains(out, "<b>team</b>") {
		t.Fatalf("acl list after the UI added a rule:\n%s", out)
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"account=alice&action=delete&repo=shared/x", "Yes"},
		{"account=alice&action=push&repo=shared/x", "No"},
		// The first rule kept the default policy as rule 2: signed-in pull.
		{"account=alice&action=pull&repo=other/x", "Yes"},
		{"account=alice&action=push&repo=other/x", "No"},
		{"account=admin&action=delete&repo=other/x", "Yes"},
		{"account=&action=pull&repo=shared/x", "No"},
	} {
		p := getPage(t, s, "/ui/admin/rules/test?"+tc.query, admin)
		answers := p.find("p", "id", "answer")
		if len(answers) != 1 || !strings.HasPrefix(textOf(answers[0]), tc.want+":") {
			t.Errorf("tester %s: status %d, answers %d, want %s", tc.query, p.status, len(answers), tc.want)
		}
	}
	if p := doPage(t, formPost(t, s.URL("/ui/admin/rules/add"), url.Values{"csrf": {token}, "actions": {"fly"}}, admin, origin)); p.status != http.StatusBadRequest || len(p.find("p", "id", "error")) != 1 {
		t.Errorf("a bad rule: status %d, want 400 with the error", p.status)
	}
	if p := doPage(t, formPost(t, s.URL("/ui/admin/rules/del"), url.Values{"csrf": {token}, "number": {"1"}}, admin, origin)); p.status != http.StatusOK {
		t.Errorf("delete rule 1: status %d", p.status)
	}
	if out := s.berth(t, "", "acl", "list"); strings.Contains(out, "shared/*") {
		t.Fatalf("the rule survived its deletion:\n%s", out)
	}
}

// Under TLS the cookies are Secure, and the admin page shows when the
// certificate expires.
func TestUI_TLSCookiesSecure(t *testing.T) {
	s, roots := startTLSServer(t, "--auth", "token")
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Transport: tlsTransport(s, roots), Jar: jar, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	base := "https://" + registryHost
	resp, err := client.Get(base + "/ui/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var token string
	for _, c := range resp.Cookies() {
		if c.Name == "berth_csrf" {
			token = c.Value
			if !c.Secure {
				t.Error("berth_csrf is not Secure under TLS")
			}
		}
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = client.PostForm(base+"/ui/signin", url.Values{"csrf": {token}, "name": {"admin"}, "password": {strings.TrimSpace(string(pw))}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	secure := false
	for _, c := range resp.Cookies() {
		secure = secure || c.Name == "berth_session" && c.Secure && c.HttpOnly
	}
	if !secure {
		t.Fatalf("sign-in over TLS: status %d, cookies %v: want a Secure HttpOnly berth_session", resp.StatusCode, resp.Cookies())
	}
	resp, err = client.Get(base + "/ui/admin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := html.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := page{status: resp.StatusCode, doc: doc}
	if info := p.find("dl", "id", "server"); len(info) != 1 || !strings.Contains(textOf(info[0]), "expires 20") {
		t.Fatalf("admin page over TLS (%d) does not show the certificate's expiry", resp.StatusCode)
	}
}

// A UI form is read through a cap: fasthttp's own form parsing would read a
// streamed body whole. An oversized form, announced or chunked, gets 413
// and no session; a normal sign-in still works after it.
func TestUI_FormBodyBounded(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	big := "csrf=x&name=admin&password=" + strings.Repeat("a", 1<<20)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked { // no length to refuse it by: the cap must stop the read
			body = io.MultiReader(strings.NewReader(big))
		}
		req, err := http.NewRequest(http.MethodPost, s.URL("/ui/signin"), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if p := doPage(t, req); p.status != http.StatusRequestEntityTooLarge {
			t.Errorf("a 1 MiB form (chunked %v): status %d, want 413", chunked, p.status)
		}
	}
	if c := signIn(t, s, "admin", adminPW); c == nil {
		t.Fatal("no sign-in after the oversized forms")
	}
}
