package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The admin pages added to the first ones, driven in Chromium: sort the
// repository list, make a user admin, move an access rule, run GC and see
// the run listed, start a backup and see it recorded, read the disk's free
// space. With BERTH_UI_SCREENSHOTS=docs it writes their screenshots.
func TestUI_BrowserAdmin(t *testing.T) {
	b := newBrowser(t)
	s, adminPW := startAuthServer(t, "")
	pushRandom(t, s, "web/app:v1", 30_000, 2, "admin", adminPW)
	pushRandom(t, s, "web/tiny:v1", 500, 1, "admin", adminPW)
	pushRandom(t, s, "tools/big:v1", 300_000, 3, "admin", adminPW)
	s.addUser(t, "carol", "carol-secret")
	s.berth(t, "", "acl", "add", "--account", "carol", "--name", "web/*", "--actions", "pull", "--comment", "web readers")
	// The first rule keeps the default pull for signed-in users as rule 2:
	// drop it, so that only the rules below decide.
	s.berth(t, "", "acl", "del", "2")
	s.berth(t, "", "acl", "add", "--account", "carol", "--name", "web/app", "--actions", "*", "--comment", "web/app maintainer")
	s.berth(t, "", "acl", "add", "--account", "admin", "--actions", "*")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	b.do("sign in", chromedp.Navigate(s.URL("/ui/signin")),
		chromedp.SendKeys(css("#name"), "admin"), chromedp.SendKeys(css("#password"), adminPW),
		chromedp.Click(css("#submit")), chromedp.WaitVisible(css(".who")))

	// Sort by size: the biggest first; the search box keeps the order.
	b.do("sort by size", chromedp.Click(css("#sort-size")))
	b.waitURL("sort=size")
	if first := b.text("#repos tbody tr:first-child a.repo"); first != "tools/big" {
		t.Fatalf("sorted by size, the first repository is %q", first)
	}
	b.shoot("ui-repositories-by-size")
	b.do("search sorted", chromedp.SendKeys(css("#q"), "web/"), chromedp.Click(css("#search")))
	b.waitURL("q=web")
	if got := b.text("#repos tbody"); !strings.Contains(got, "web/app") || strings.Contains(got, "tools/big") || strings.Index(got, "web/app") > strings.Index(got, "web/tiny") {
		t.Fatalf("search web/ sorted by size lists %q", got)
	}

	// Make carol admin from the users table.
	b.do("make admin", chromedp.Navigate(s.URL("/ui/admin")), chromedp.Click(css(`button[aria-label="make carol admin"]`)), chromedp.WaitVisible(css("#output")))
	if out := b.text("#output"); !strings.Contains(out, "gave the admin right to carol") {
		t.Fatalf("make admin said %q", out)
	}
	if users := s.berth(t, "", "user", "list"); !regexpLine(users, `carol\s+yes`) {
		t.Fatalf("carol is not admin after the click:\n%s", users)
	}

	// Move rule 2 above rule 1: carol may now delete in web/app.
	b.do("move rule", chromedp.Navigate(s.URL("/ui/admin/rules")), chromedp.Click(css(`button[aria-label="move rule 2 up"]`)), chromedp.WaitVisible(css("#output")))
	if first := b.text("#rules tbody tr:first-child"); !strings.Contains(first, "web/app maintainer") {
		t.Fatalf("after moving rule 2 up, rule 1 is %q", first)
	}
	b.shoot("ui-admin-rules")

	// Run GC; the run is listed.
	b.do("gc run", chromedp.Navigate(s.URL("/ui/admin/gc")), chromedp.Click(css("#gc-run")), chromedp.WaitVisible(css("#gc-runs")))
	if n := b.count("#gc-runs tbody tr"); n != 1 {
		t.Fatalf("after one GC run, %d listed", n)
	}
	b.shoot("ui-admin-gc")

	// Start a full backup; reload until it is recorded.
	dir := t.TempDir()
	b.do("start backup", chromedp.Navigate(s.URL("/ui/admin/backups")), chromedp.SendKeys(css("#backup-dir"), dir),
		chromedp.Click(css("#backup-submit")), chromedp.WaitVisible(css("#output")))
	deadline := time.Now().Add(60 * time.Second)
	for b.count("#backup-runs tbody tr") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the backup was not recorded within a minute")
		}
		if b.count("#error") != 0 {
			t.Fatalf("backup failed: %s", b.text("#error"))
		}
		time.Sleep(100 * time.Millisecond)
		b.do("reload backups", chromedp.Navigate(s.URL("/ui/admin/backups")), chromedp.WaitVisible(css("#last")))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "berth-*-full.tar.zst"))
	if len(files) != 1 || !strings.Contains(b.text("#last-full"), files[0]) {
		t.Fatalf("backup files %v; last full shows %q", files, b.text("#last-full"))
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	b.shoot("ui-admin-backups")

	// The storage page shows the disk's free space and the largest first.
	b.do("storage", chromedp.Navigate(s.URL("/ui/admin/storage")), chromedp.WaitVisible(css("#disk-free")))
	if free := b.text("#disk-free"); !strings.Contains(free, " of ") {
		t.Fatalf("disk free shows %q", free)
	}
	if first := b.text("#usage tbody tr:first-child"); !strings.Contains(first, "tools/big") {
		t.Fatalf("storage lists %q first", first)
	}
	b.shoot("ui-admin-storage")

	// On a phone, no admin page is wider than the screen (tables scroll in
	// their own box).
	b.do("phone view", chromedp.EmulateViewport(390, 844))
	for _, path := range []string{"/ui/?sort=size", "/ui/admin", "/ui/admin/rules", "/ui/admin/gc", "/ui/admin/storage", "/ui/admin/backups"} {
		b.do("phone "+path, chromedp.Navigate(s.URL(path)), chromedp.WaitVisible(css("main")))
		ctx, cancel := b.bounded()
		width, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if width > 390 {
			t.Errorf("on a 390 px screen %s is %d px wide", path, width)
		}
	}
}
