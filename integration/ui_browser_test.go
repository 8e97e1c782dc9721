package integration

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/fixtures"
)

// Hostile strings pushed in a label and an annotation: were any of them
// rendered as markup, the page's title would change or an img would appear.
const (
	xssScript = `<script>document.title="pwned"</script>`
	xssImg    = `"><img src=x onerror="document.title='pwned'">`
)

// chromium finds Debian's headless Chromium, skipping the test without it
// (failing under CI=true, as fixtures.RequireTool does).
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium-headless-shell/chromium-headless-shell"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return fixtures.RequireTool(t, "chromium-headless-shell")
}

// browser is headless Chromium driven by chromedp, for one test.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts headless Chromium for the test. Its network is what
// the pages ask for; the test serves on 127.0.0.1 only.
func newBrowser(t *testing.T) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1100, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// bounded returns a context that ends the step after 20 s, so a missing
// element fails the test instead of hanging it.
func (b *browser) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 20*time.Second)
}

// do runs steps, failing the test with what on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the visible text of the element sel selects.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// count returns how many elements match the CSS selector sel.
func (b *browser) count(sel string) int {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.querySelectorAll("+strconv.Quote(sel)+").length"))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// waitURL waits until the page's address contains sub: a form submitted
// by a click has navigated.
func (b *browser) waitURL(sub string) {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	for {
		loc, err := chromedp.Run(ctx, chromedp.Evaluate[string]("location.href"))
		if err == nil && strings.Contains(loc, sub) {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("the page did not reach %q (at %q, %v)", sub, loc, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pushHostile pushes an image to repo:tag whose config label and manifest
// annotation hold HTML.
func pushHostile(t *testing.T, s *server, ref, user, password string) v1.Image {
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"evil.script": xssScript, "evil.img": xssImg}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"org.example.note": xssImg}).(v1.Image)
	if err := remote.Write(s.ref(t, ref), img, withAuth(t, user, password)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// shoot saves a screenshot of the page when BERTH_UI_SCREENSHOTS names a
// directory (docs/ for the README), else under the test's temp dir.
func (b *browser) shoot(name string) {
	b.t.Helper()
	dir := os.Getenv("BERTH_UI_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	ctx, cancel := b.bounded()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func TestUI_Browser(t *testing.T) {
	b := newBrowser(t)
	s, adminPW := startAuthServer(t, "", "--anonymous-pull")
	pushHostile(t, s, "web/app:v1", "admin", adminPW)
	pushHostile(t, s, "web/app:v2", "admin", adminPW)
	pushHostile(t, s, "other/tool:1.0", "admin", adminPW)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Anonymous, with --anonymous-pull, sees what anonymous may pull, and
	// no admin link.
	b.do("anonymous view", chromedp.Navigate(s.URL("/")), chromedp.WaitVisible(css("#repos")))
	if text := b.text("#repos"); !strings.Contains(text, "web/app") || !strings.Contains(text, "other/tool") {
		t.Fatalf("anonymous repository list = %q", text)
	}
	if n := b.count(`a[href="/ui/admin"]`); n != 0 {
		t.Fatalf("anonymous is shown %d admin links", n)
	}

	// Sign in as admin through the form.
	b.do("sign in", chromedp.Navigate(s.URL("/ui/signin")),
		chromedp.SendKeys(css("#name"), "admin"), chromedp.SendKeys(css("#password"), adminPW),
		chromedp.Click(css("#submit")), chromedp.WaitVisible(css(".who")))
	if who := b.text(".who"); who != "admin" {
		t.Fatalf("signed in as %q", who)
	}
	b.shoot("ui-repositories")

	// Search narrows the list to the match.
	b.do("search", chromedp.SendKeys(css("#q"), "web"), chromedp.Click(css("#search")))
	b.waitURL("q=web")
	if text := b.text("#repos tbody"); !strings.Contains(text, "web/app") || strings.Contains(text, "other/tool") {
		t.Fatalf("search for web lists %q", text)
	}

	// The repository page lists both tags; the image page its layers, and
	// the hostile label and annotation as text.
	b.do("repository page", chromedp.Click(css("a.repo")), chromedp.WaitVisible(css("#tags")))
	if text := b.text("#tags"); !strings.Contains(text, "v1") || !strings.Contains(text, "v2") || !strings.Contains(text, "docker pull") {
		t.Fatalf("repository page shows %q", text)
	}
	b.shoot("ui-repository")
	b.phoneAndDark("ui-repository")
	b.do("image page", chromedp.Click(css("a.tag")), chromedp.WaitVisible(css("#layers")))
	if n := b.count("#layers tr.layer"); n != 2 {
		t.Errorf("image page lists %d layers, want 2", n)
	}
	labels, annotations := b.text("#labels"), b.text("#annotations")
	if !strings.Contains(labels, xssScript) || !strings.Contains(labels, xssImg) || !strings.Contains(annotations, xssImg) {
		t.Errorf("hostile label/annotation not shown as text: labels %q annotations %q", labels, annotations)
	}
	ctx, cancel := b.bounded()
	title, err := chromedp.Run(ctx, chromedp.Title())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if n := b.count("main img, main script"); strings.Contains(title, "pwned") || n != 0 {
		t.Fatalf("hostile label became markup: title %q, %d img/script elements", title, n)
	}
	b.shoot("ui-image")

	// Delete v2 through the confirm page; tags/list loses it.
	b.do("delete tag", chromedp.Navigate(s.URL("/ui/repo?name=web/app")),
		chromedp.Click(css(`a[href$="tag=v2"]`)), chromedp.WaitVisible(css("#what")))
	if what := b.text("#what"); !strings.Contains(what, "web/app:v2") {
		t.Errorf("confirm page says %q", what)
	}
	b.do("confirm delete", chromedp.Click(css("#confirm-delete")))
	b.waitURL("/ui/repo?name=")
	if tags := tagsList(t, s, "web/app", "admin", adminPW); strings.Contains(tags, `"v2"`) || !strings.Contains(tags, `"v1"`) {
		t.Fatalf("after the delete, tags/list = %s", tags)
	}

	// Forged POSTs with the browser's session cookie: no CSRF token, or a
	// foreign Origin, are refused and change nothing.
	cookie := b.sessionCookie()
	for name, req := range map[string]*http.Request{
		"no token":       formPost(t, s.URL("/ui/delete"), url.Values{"name": {"web/app"}, "tag": {"v1"}}, cookie, ""),
		"foreign origin": formPost(t, s.URL("/ui/delete"), url.Values{"name": {"web/app"}, "tag": {"v1"}, "csrf": {csrfOf(t, s, cookie)}}, cookie, "http://evil.example"),
	} {
		if p := doPage(t, req); p.status != http.StatusForbidden {
			t.Errorf("forged POST (%s): status %d, want 403", name, p.status)
		}
	}
	if tags := tagsList(t, s, "web/app", "admin", adminPW); !strings.Contains(tags, `"v1"`) {
		t.Fatalf("a forged POST deleted v1: %s", tags)
	}

	// An admin adds a user in the admin page; the user then signs in at /token.
	b.do("add user", chromedp.Navigate(s.URL("/ui/admin")),
		chromedp.SendKeys(css("#new-name"), "bob"), chromedp.SendKeys(css("#new-password"), "bob-secret-1"),
		chromedp.Click(css("#add-user")), chromedp.WaitVisible(css("#output")))
	if users := b.text("#users"); !strings.Contains(users, "bob") {
		t.Fatalf("users table after adding bob: %q", users)
	}
	if r := s.getToken(t, "bob", "bob-secret-1", url.Values{"service": {"berth"}}); r.Status != http.StatusOK {
		t.Fatalf("bob at /token: status %d", r.Status)
	}
	b.shoot("ui-admin")

	// `berth user passwd` revokes the session: the admin page now refuses.
	s.berth(t, "new-admin-secret\n", "user", "passwd", "admin", "--password-stdin")
	b.do("after passwd", chromedp.Navigate(s.URL("/ui/admin")), chromedp.WaitVisible(css("#error")))
	if n := b.count(".who"); n != 0 {
		t.Fatal("the session outlived `berth user passwd`")
	}
}

// tagsList returns the body of GET /v2/REPO/tags/list as user.
func tagsList(t *testing.T, s *server, repo, user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, s.URL("/v2/"+repo+"/tags/list"), nil)
	req.Header.Set("Authorization", basicAuth(user, password))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// phoneAndDark checks the page on a phone-sized screen — nothing wider
// than the screen but inside a scroll box — and in dark mode, where the
// background must turn dark, then restores the desktop view. It saves
// screenshots of both.
func (b *browser) phoneAndDark(name string) {
	b.t.Helper()
	b.do("phone view", chromedp.EmulateViewport(390, 844))
	ctx, cancel := b.bounded()
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	cancel()
	if err != nil {
		b.t.Fatal(err)
	}
	if width > 390 {
		b.t.Errorf("on a 390 px screen the page is %d px wide", width)
	}
	b.shoot(name + "-phone")
	ctx, cancel = b.bounded()
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		b.t.Fatal(err)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string]("getComputedStyle(document.body).backgroundColor"))
	if err != nil {
		b.t.Fatal(err)
	}
	if bg != "rgb(22, 24, 27)" {
		b.t.Errorf("dark mode background is %q, want the dark one", bg)
	}
	b.shoot(name + "-dark")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		b.t.Fatal(err)
	}
	b.do("desktop view", chromedp.EmulateViewport(1100, 800))
}

// sessionCookie returns the browser's berth_session cookie, checking its
// flags.
func (b *browser) sessionCookie() *http.Cookie {
	b.t.Helper()
	ctx, cancel := b.bounded()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "berth_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				b.t.Errorf("session cookie: HttpOnly %v SameSite %q", c.HTTPOnly, c.SameSite)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	b.t.Fatal("the browser holds no berth_session cookie")
	return nil
}
