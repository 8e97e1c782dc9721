package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushRandom pushes a random image of layers layers of size bytes each to
// ref as user.
func pushRandom(t *testing.T, s *server, ref string, size int64, layers int64, user, password string) {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, ref), img, withAuth(t, user, password)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// repoNames returns the repository names a list page shows, in order.
func repoNames(p page) []string {
	var out []string
	for _, a := range p.find("a", "class", "repo") {
		out = append(out, textOf(a))
	}
	return out
}

// The repository list sorts by size and by last push on the server, with
// search and paging still working.
func TestUI_RepositorySort(t *testing.T) {
	s, adminPW := startAuthServer(t, "", "--anonymous-pull")
	// Pushed in this order, so that name, size and push order all differ.
	pushRandom(t, s, "sort/a-mid:v1", 40_000, 1, "admin", adminPW)
	pushRandom(t, s, "sort/c-big:v1", 200_000, 2, "admin", adminPW)
	pushRandom(t, s, "sort/b-small:v1", 1_000, 1, "admin", adminPW)
	for i := range 51 {
		pushRandom(t, s, fmt.Sprintf("many/r%02d:v1", i), 100, 1, "admin", adminPW)
	}

	for _, tc := range []struct{ query, want string }{
		{"q=sort/", "sort/a-mid sort/b-small sort/c-big"},
		{"q=sort/&sort=name", "sort/a-mid sort/b-small sort/c-big"},
		{"q=sort/&sort=size", "sort/c-big sort/a-mid sort/b-small"},
		{"q=sort/&sort=pushed", "sort/b-small sort/c-big sort/a-mid"},
		{"q=small&sort=size", "sort/b-small"},
	} {
		p := getPage(t, s, "/ui/?"+tc.query, nil)
		if got := strings.Join(repoNames(p), " "); p.status != http.StatusOK || got != tc.want {
			t.Errorf("/ui/?%s: status %d, %q; want %q", tc.query, p.status, got, tc.want)
		}
	}
	if p := getPage(t, s, "/ui/?sort=weight", nil); p.status != http.StatusBadRequest {
		t.Errorf("sort=weight: status %d, want 400", p.status)
	}
	if p := getPage(t, s, "/ui/?sort=size&page=0", nil); p.status != http.StatusBadRequest {
		t.Errorf("page=0: status %d, want 400", p.status)
	}

	// 51 matches: 50 on the first page, with a next link that keeps the
	// search and the order, and the last on the second, which links back.
	for _, order := range []string{"size", "pushed"} {
		first := getPage(t, s, "/ui/?q=many/&sort="+order, nil)
		next := first.find("a", "id", "next")
		if len(next) != 1 {
			t.Fatalf("sort=%s: no next link", order)
		}
		href, _ := url.Parse(attrOf(next[0], "href"))
		if q := href.Query(); q.Get("q") != "many/" || q.Get("sort") != order || q.Get("page") != "2" {
			t.Errorf("sort=%s: next link %s", order, href)
		}
		second := getPage(t, s, href.String(), nil)
		a, b := repoNames(first), repoNames(second)
		all := append(slices.Clone(a), b...)
		slices.Sort(all)
		if len(a) != 50 || len(b) != 1 || len(slices.Compact(all)) != 51 {
			t.Errorf("sort=%s: pages of %d and %d, %d distinct; want 50, 1, 51", order, len(a), len(b), len(slices.Compact(all)))
		}
		if len(second.find("a", "id", "prev")) != 1 || len(second.find("a", "id", "next")) != 0 {
			t.Errorf("sort=%s: the last page's links are wrong", order)
		}
	}
	if p := getPage(t, s, "/ui/?sort=pushed", nil); len(p.find("span", "id", "as-of")) != 1 {
		t.Error("a sorted list does not say when its numbers were taken")
	}

	// A signed-in user sees, sorted too, only what the rules let her pull.
	s.addUser(t, "bob", "bob-secret-1")
	s.berth(t, "", "acl", "add", "--account", "bob", "--name", "sort/*", "--actions", "pull")
	// The first rule keeps the default pull for signed-in users as rule 2:
	// drop it, so that only the rules below decide.
	s.berth(t, "", "acl", "del", "2")
	bob := signIn(t, s, "bob", "bob-secret-1")
	for _, order := range []string{"size", "pushed"} {
		p := getPage(t, s, "/ui/?sort="+order, bob)
		if got := repoNames(p); len(got) != 3 || !strings.HasPrefix(got[0], "sort/") || !strings.HasPrefix(got[2], "sort/") {
			t.Errorf("bob, sort=%s: %v; want the three sort/ repositories only", order, got)
		}
	}
}

// An admin makes a user admin and takes the right away again, in the web UI
// and with `berth user admin`; the only admin keeps it.
func TestUI_MakeAdmin(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	root := signIn(t, s, "admin", adminPW)
	alice := signIn(t, s, "alice", "alice-secret")
	token, origin := csrfOf(t, s, root), "http://"+s.Addr

	if p := getPage(t, s, "/ui/admin", root); len(p.find("button", "class", "make-admin")) != 1 {
		t.Fatal("the users table offers no make-admin button for alice")
	}
	p := doPage(t, formPost(t, s.URL("/ui/admin/user/admin"), url.Values{"csrf": {token}, "name": {"alice"}}, root, origin))
	if p.status != http.StatusOK || !strings.Contains(textOf(p.find("pre", "id", "output")[0]), "gave the admin right to alice") {
		t.Fatalf("make alice admin: status %d", p.status)
	}
	if p := getPage(t, s, "/ui/admin", alice); p.status != http.StatusOK {
		t.Fatalf("alice, now admin, gets %d on the admin page (her session is the same)", p.status)
	}
	if out := s.berth(t, "", "user", "list"); !regexpLine(out, `alice\s+yes`) {
		t.Errorf("user list after make admin:\n%s", out)
	}
	// The API sees the right at once too: an admin may push anywhere.
	pushRandom(t, s, "other/by-alice:v1", 100, 1, "alice", "alice-secret")

	p = doPage(t, formPost(t, s.URL("/ui/admin/user/admin"), url.Values{"csrf": {token}, "name": {"alice"}, "revoke": {"on"}}, root, origin))
	if p.status != http.StatusOK {
		t.Fatalf("revoke alice: status %d", p.status)
	}
	if p := getPage(t, s, "/ui/admin", alice); p.status != http.StatusForbidden {
		t.Fatalf("alice, no longer admin, gets %d on the admin page", p.status)
	}
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "other/by-alice:v2"), img, withAuth(t, "alice", "alice-secret")...); err == nil {
		t.Fatal("alice, no longer admin, pushed outside alice/")
	}

	// The only admin cannot lose the right: nobody could manage users then.
	p = doPage(t, formPost(t, s.URL("/ui/admin/user/admin"), url.Values{"csrf": {token}, "name": {"admin"}, "revoke": {"on"}}, root, origin))
	if e := p.find("p", "id", "error"); p.status != http.StatusBadRequest || len(e) != 1 || !strings.Contains(textOf(e[0]), "only admin") {
		t.Fatalf("revoke the only admin: status %d", p.status)
	}
	if p := getPage(t, s, "/ui/admin", root); p.status != http.StatusOK {
		t.Fatalf("the only admin lost the right: %d", p.status)
	}

	// The same operation on the command line, through the control socket.
	if out := s.berth(t, "", "user", "admin", "alice"); !strings.Contains(out, "gave the admin right to alice") {
		t.Errorf("berth user admin alice: %q", out)
	}
	if out := s.berth(t, "", "user", "admin", "admin", "--revoke"); !strings.Contains(out, "took the admin right from admin") {
		t.Errorf("berth user admin admin --revoke: %q", out)
	}
	if _, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "admin", "alice", "--revoke"); err == nil || !strings.Contains(stderr, "only admin") {
		t.Errorf("revoking the last admin on the CLI: err %v, stderr %q", err, stderr)
	}
	if _, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "admin", "nobody"); err == nil || !strings.Contains(stderr, "no user nobody") {
		t.Errorf("berth user admin nobody: err %v, stderr %q", err, stderr)
	}
}

// Moving a rule changes which one matches first, in the web UI and with
// `berth acl move`.
func TestUI_RuleReorder(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	s.berth(t, "", "acl", "add", "--account", "alice", "--name", "web/*", "--actions", "pull")
	// The first rule keeps the default pull for signed-in users as rule 2:
	// drop it, so that only the rules below decide.
	s.berth(t, "", "acl", "del", "2")
	s.berth(t, "", "acl", "add", "--account", "alice", "--name", "web/app", "--actions", "*")
	s.berth(t, "", "acl", "add", "--account", "admin", "--actions", "*")
	root := signIn(t, s, "admin", adminPW)
	token, origin := csrfOf(t, s, root), "http://"+s.Addr
	mayDelete := func() string {
		t.Helper()
		p := getPage(t, s, "/ui/admin/rules/test?account=alice&action=delete&repo=web/app", root)
		a := p.find("p", "id", "answer")
		if len(a) != 1 {
			t.Fatal("the tester gave no answer")
		}
		return strings.Fields(textOf(a[0]))[0]
	}
	if got := mayDelete(); got != "No:" {
		t.Fatalf("before the move: %s, want No (rule 1 grants only pull)", got)
	}
	rules := getPage(t, s, "/ui/admin/rules", root)
	if up, down := len(rules.find("button", "class", "up")), len(rules.find("button", "class", "down")); up != 2 || down != 2 {
		t.Errorf("3 rules show %d up and %d down buttons, want 2 and 2", up, down)
	}
	p := doPage(t, formPost(t, s.URL("/ui/admin/rules/move"), url.Values{"csrf": {token}, "number": {"2"}, "dir": {"up"}}, root, origin))
	if p.status != http.StatusOK {
		t.Fatalf("move rule 2 up: status %d", p.status)
	}
	if got := mayDelete(); got != "Yes:" {
		t.Fatalf("after moving rule 2 up: %s, want Yes", got)
	}
	if out := s.berth(t, "", "acl", "list"); !regexpLine(out, `^1\s+alice\s+repository\s+web/app\s+\*`) {
		t.Errorf("acl list after the move:\n%s", out)
	}
	p = doPage(t, formPost(t, s.URL("/ui/admin/rules/move"), url.Values{"csrf": {token}, "number": {"1"}, "dir": {"up"}}, root, origin))
	if p.status != http.StatusBadRequest || len(p.find("p", "id", "error")) != 1 {
		t.Errorf("move rule 1 up: status %d, want 400 with the error", p.status)
	}

	// The command line moves it back.
	if out := s.berth(t, "", "acl", "move", "1", "--to", "2"); !strings.Contains(out, "moved rule 1 to 2") {
		t.Errorf("acl move 1 --to 2: %q", out)
	}
	if got := mayDelete(); got != "No:" {
		t.Fatalf("after acl move 1 --to 2: %s, want No", got)
	}
	for _, args := range [][]string{{"5", "--to", "1"}, {"1", "--to", "9"}, {"1"}, {"x", "--to", "1"}} {
		if _, stderr, err := runBerth(t, t.Context(), nil, append([]string{"--data", s.Data, "acl", "move"}, args...)...); err == nil || stderr == "" {
			t.Errorf("acl move %v: err %v, stderr %q", args, err, stderr)
		}
	}
}

// The GC page lists past runs — from the page, the command and not the dry
// runs — and the storage page shows the disk's free space.
func TestUI_GCRunsAndStorage(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	pushRandom(t, s, "gc/app:v1", 10_000, 1, "admin", adminPW)
	root := signIn(t, s, "admin", adminPW)
	token, origin := csrfOf(t, s, root), "http://"+s.Addr
	if p := getPage(t, s, "/ui/admin/gc", root); len(p.find("p", "id", "no-runs")) != 1 {
		t.Fatal("a fresh registry shows GC runs")
	}
	p := doPage(t, formPost(t, s.URL("/ui/admin/gc"), url.Values{"csrf": {token}, "mode": {"dry-run"}}, root, origin))
	if p.status != http.StatusOK || len(p.find("pre", "id", "output")) != 1 || len(p.find("p", "id", "no-runs")) != 1 {
		t.Fatalf("dry run: status %d, or it was recorded", p.status)
	}
	p = doPage(t, formPost(t, s.URL("/ui/admin/gc"), url.Values{"csrf": {token}, "mode": {"run"}}, root, origin))
	if rows := p.find("tr", "", ""); p.status != http.StatusOK || len(p.find("table", "id", "gc-runs")) != 1 || len(rows) != 2 {
		t.Fatalf("gc run: status %d, %d table rows (want a header and one run)", p.status, len(rows))
	}
	s.berth(t, "", "gc")
	p = getPage(t, s, "/ui/admin/gc", root)
	if rows := p.find("tr", "", ""); len(rows) != 3 {
		t.Fatalf("after berth gc: %d table rows, want a header and two runs", len(rows))
	}

	p = getPage(t, s, "/ui/admin/storage", root)
	free := p.find("dd", "id", "disk-free")
	if p.status != http.StatusOK || len(free) != 1 || !strings.Contains(textOf(free[0]), " of ") {
		t.Fatalf("storage page: status %d, no disk free", p.status)
	}
	if usage := p.find("table", "id", "usage"); len(usage) != 1 || !strings.Contains(textOf(usage[0]), "gc/app") {
		t.Error("the storage page does not list gc/app")
	}
}

// A backup started on the backups page is a real backup (restore takes it),
// recorded with its size and path beside the ones `berth backup` wrote.
func TestUI_Backups(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	pushRandom(t, s, "bk/app:v1", 20_000, 2, "admin", adminPW)
	root := signIn(t, s, "admin", adminPW)
	token, origin := csrfOf(t, s, root), "http://"+s.Addr
	dir := t.TempDir()

	for _, tc := range []struct{ name, dir, kind string }{
		{"relative", "backups", "full"},
		{"in the data dir", s.Data, "full"},
		{"no such dir", filepath.Join(dir, "nope"), "full"},
		{"bad kind", dir, "weekly"},
		{"incremental without a full one", dir, "incremental"},
	} {
		p := doPage(t, formPost(t, s.URL("/ui/admin/backups"), url.Values{"csrf": {token}, "dir": {tc.dir}, "kind": {tc.kind}}, root, origin))
		if p.status != http.StatusBadRequest || len(p.find("p", "id", "error")) != 1 {
			t.Errorf("%s: status %d, want 400 with the error", tc.name, p.status)
		}
	}

	start := func(kind string) page {
		t.Helper()
		p := doPage(t, formPost(t, s.URL("/ui/admin/backups"), url.Values{"csrf": {token}, "dir": {dir}, "kind": {kind}}, root, origin))
		if p.status != http.StatusOK || len(p.find("pre", "id", "output")) != 1 {
			t.Fatalf("start a %s backup: status %d", kind, p.status)
		}
		return p
	}
	// waitRuns polls the page until n backups are recorded and none runs.
	waitRuns := func(n int) page {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			p := getPage(t, s, "/ui/admin/backups", root)
			if e := p.find("p", "id", "error"); len(e) > 0 {
				t.Fatalf("backup failed: %s", textOf(e[0]))
			}
			if len(p.find("p", "id", "running")) == 0 && len(p.find("tr", "", "")) == n+1 {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %d backups recorded within a minute", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	start("full")
	p := waitRuns(1)
	full, _ := filepath.Glob(filepath.Join(dir, "berth-*-full.tar.zst"))
	if len(full) != 1 {
		t.Fatalf("full backup files: %v", full)
	}
	if fi, err := os.Stat(full[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("full backup file: %v, %v (want mode 0600)", fi, err)
	}
	if last := textOf(p.find("dd", "id", "last-full")[0]); !strings.Contains(last, full[0]) {
		t.Errorf("last full: %q, want its path %s", last, full[0])
	}

	// One written by the command (through the control socket) is recorded
	// too, with the path as the command saw it.
	cli := filepath.Join(dir, "cli.tar.zst")
	s.berth(t, "", "backup", "--output", cli)
	waitRuns(2)
	start("incremental")
	p = waitRuns(3)
	last := textOf(p.find("dd", "id", "last-incremental")[0])
	incr, _ := filepath.Glob(filepath.Join(dir, "berth-*-incremental.tar.zst"))
	if len(incr) != 1 || !strings.Contains(last, incr[0]) {
		t.Fatalf("last incremental %q; files %v", last, incr)
	}

	// The chain restores: the UI's full backup, then its incremental (which
	// follows the command's backup, the newest file then).
	restored := t.TempDir()
	if _, stderr, err := runBerth(t, t.Context(), nil, "--data", restored, "restore", "--input", cli, "--input", incr[0]); err != nil {
		t.Fatalf("restore the command's backup and the UI's incremental: %v\n%s", err, stderr)
	}
	if _, stderr, err := runBerth(t, t.Context(), nil, "--data", t.TempDir(), "restore", "--input", full[0]); err != nil {
		t.Fatalf("restore the UI's full backup: %v\n%s", err, stderr)
	}
}

// regexpLine reports whether a line of out matches the regular expression re.
func regexpLine(out, re string) bool {
	r := regexp.MustCompile(re)
	for _, line := range strings.Split(out, "\n") {
		if r.MatchString(line) {
			return true
		}
	}
	return false
}
