package integration

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/store"
)

// The operator's path (issue 20): first start, wrong --data, gc and du
// reports, the repo and tag commands, user names, ownership.

// runServe runs `berth serve` in the foreground until it exits (it must
// fail) and returns its output.
func runServe(t *testing.T, data string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), berthBin, append([]string{"serve", "--data", data}, args...)...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFirstStart_PortInUse: with the port taken, serve fails before it
// creates the admin or prints a password.
func TestFirstStart_PortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := t.TempDir()
	out, err := runServe(t, data, "--addr", ln.Addr().String())
	if err == nil || !strings.Contains(out, "listen on "+ln.Addr().String()) {
		t.Fatalf("serve on a taken port: %v\n%s", err, out)
	}
	if strings.Contains(out, "created user") {
		t.Errorf("serve created a user before failing to bind:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, "initial-admin-password")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("initial-admin-password exists after a failed start: %v", err)
	}
	list, _, err := runBerth(t, t.Context(), nil, "--data", data, "user", "list")
	if err != nil || strings.Contains(list, "admin") {
		t.Errorf("user list after a failed start: %v\n%s", err, list)
	}
}

// TestFirstStart_PasswordOnlyInFile runs the README's first start with
// output to a pipe (a journal, docker logs): the password is not in it, the
// file's path and the --data of the hint are; then the README's next step,
// `berth --data DATA user passwd admin`, removes the file and says so.
func TestFirstStart_PasswordOnlyInFile(t *testing.T) {
	s, password := startAuthServer(t, "")
	abs, _ := filepath.Abs(s.Data)
	if strings.Contains(s.Log(), password) {
		t.Fatalf("the initial password is in the server's output:\n%s", s.Log())
	}
	for _, want := range []string{
		"created user admin; its password is in " + filepath.Join(abs, "initial-admin-password"),
		"change it with: berth --data " + abs + " user passwd admin",
	} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("the first start does not say %q:\n%s", want, s.Log())
		}
	}
	out := s.berth(t, "a-new-password\n", "user", "passwd", "admin", "--password-stdin")
	if !strings.Contains(out, "removed initial-admin-password") {
		t.Errorf("user passwd admin: %q", out)
	}
	if _, err := os.Stat(filepath.Join(s.Data, "initial-admin-password")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("initial-admin-password is still there: %v", err)
	}
}

// TestFirstStart_PasswordFileUnwritable (issue 19 point 8): when the
// password file cannot be written (as on a full disk), serve fails, no
// admin exists, and nothing claims to hold a password.
func TestFirstStart_PasswordFileUnwritable(t *testing.T) {
	data := t.TempDir()
	// A non-empty directory where the file goes: its write fails.
	if err := os.MkdirAll(filepath.Join(data, "initial-admin-password", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runServe(t, data, "--addr", freeAddr(t))
	if err == nil || !strings.Contains(out, "no user created") {
		t.Fatalf("serve with an unwritable password file: %v\n%s", err, out)
	}
	if strings.Contains(out, "created user") || strings.Contains(out, "password is in") {
		t.Errorf("serve claims a password it did not write:\n%s", out)
	}
	list, _, err := runBerth(t, t.Context(), nil, "--data", data, "user", "list")
	if err != nil || strings.Contains(list, "admin") {
		t.Errorf("user list after the failed start: %v\n%s", err, list)
	}
}

// TestMaintenance_RefusesWrongData: a maintenance command with a wrong
// --data fails, says why, and creates nothing, also for the README's `user
// passwd admin` run from a directory without ./data.
func TestMaintenance_RefusesWrongData(t *testing.T) {
	wrong := filepath.Join(t.TempDir(), "berth")
	for _, args := range [][]string{{"user", "list"}, {"gc"}, {"du"}, {"repo", "list"}, {"verify"}} {
		_, errOut, err := runBerth(t, t.Context(), nil, append([]string{"--data", wrong}, args...)...)
		if err == nil || !strings.Contains(errOut, wrong+" is not a berth data directory: it does not exist") {
			t.Errorf("berth %s on a wrong --data: %v\n%s", strings.Join(args, " "), err, errOut)
		}
	}
	if _, err := os.Stat(wrong); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command created %s", wrong)
	}
	cwd := t.TempDir()
	cmd := exec.Command(berthBin, "user", "passwd", "admin", "--password-stdin")
	cmd.Dir, cmd.Stdin = cwd, strings.NewReader("a-new-password\n")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not a berth data directory") {
		t.Errorf("user passwd admin without --data: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(cwd, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("user passwd without --data created ./data")
	}
}

// TestVersion_ReportsServer: `berth --data DATA version` also reports the
// server running on DATA.
func TestVersion_ReportsServer(t *testing.T) {
	s := startRegistry(t, "")
	out := s.berth(t, "", "version")
	if !regexp.MustCompile(`(?m)^berth \S+\ncommit \S+\ngo\S+ \S+\nserver: berth \S+, commit \S+, go\S+ \S+ \(serving `).MatchString(out) {
		t.Errorf("version with a server running:\n%s", out)
	}
	stopRegistry(t, s)
	if out := s.berth(t, "", "version"); !strings.Contains(out, "server: none answers on ") {
		t.Errorf("version with the server stopped:\n%s", out)
	}
}

// TestGC_SaysWhatGraceKept: gc right after a tag delete says what the grace
// period kept and when it frees it; du has a total; the scheduled gc logs
// the grace it uses; a duration without a unit is explained.
func TestGC_SaysWhatGraceKept(t *testing.T) {
	s := startRegistry(t, "", "--gc-interval", "1h")
	if lines := s.logLines("scheduled gc"); len(lines) != 1 || !strings.Contains(lines[0], "grace=1h0m0s") {
		t.Errorf("scheduled gc log: %q", lines)
	}
	img := mustImage(t, mustLayer(t, 4096))
	if err := remote.Write(s.ref(t, "old/project:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	if du := s.berth(t, "", "du"); !regexp.MustCompile(`(?m)^total: \S+ \S+: \S+ \S+ of 2 blobs \(each counted once\), \S+ \S+ of 1 manifest, in 1 repository; uploads in progress: 0 B$`).MatchString(du) {
		t.Errorf("du has no total:\n%s", du)
	}
	s.berth(t, "", "tag", "del", "old/project:v1")
	out := s.berth(t, "", "gc")
	if !regexp.MustCompile(`kept for the grace period \(1h\): 1 manifest, 2 links, 2 blobs \(\S+ \S+\) nothing references but that are too recent to remove; a gc from \S+ on frees them`).MatchString(out) {
		t.Errorf("gc after a delete does not say what the grace kept:\n%s", out)
	}
	_, errOut, err := runBerth(t, t.Context(), nil, "serve", "--data", t.TempDir(), "--gc-interval", "10")
	if err == nil || !strings.Contains(errOut, "10 has no unit: write 10s, 10m or 10h") {
		t.Errorf("serve --gc-interval 10: %v\n%s", err, errOut)
	}
}

// TestRepoAndTagCommands: repo list, tag list and tag del print the same
// with the server up (control socket) and down, and tag del is what the
// API then shows.
func TestRepoAndTagCommands(t *testing.T) {
	s := startRegistry(t, "")
	img := mustImage(t, mustLayer(t, 1024))
	for _, ref := range []string{"apps/web:1.0", "apps/web:1.1", "tools/jq:latest"} {
		if err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...); err != nil {
			t.Fatal(err)
		}
	}
	up := map[string]string{
		"repo list": s.berth(t, "", "repo", "list"),
		"tag list":  s.berth(t, "", "tag", "list", "apps/web"),
	}
	if up["repo list"] != "apps/web\ntools/jq\n" || up["tag list"] != "1.0\n1.1\n" {
		t.Fatalf("with the server up: %q", up)
	}
	del := s.berth(t, "", "tag", "del", "apps/web:1.0")
	if !strings.HasPrefix(del, "deleted tag apps/web:1.0 (it pointed at sha256:") {
		t.Errorf("tag del: %q", del)
	}
	resp, err := httpClient.Get(s.URL("/v2/apps/web/tags/list"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"name":"apps/web","tags":["1.1"]}` {
		t.Errorf("tags/list after tag del: %s", body)
	}
	_, errOut, err := runBerth(t, t.Context(), nil, "--data", s.Data, "tag", "del", "apps/web:1.0")
	if err == nil || !strings.Contains(errOut, "no tag apps/web:1.0") {
		t.Errorf("tag del of a deleted tag: %v %s", err, errOut)
	}
	stopRegistry(t, s)
	if got := s.berth(t, "", "repo", "list"); got != up["repo list"] {
		t.Errorf("repo list with the server down: %q, up: %q", got, up["repo list"])
	}
	if got := s.berth(t, "", "tag", "list", "apps/web"); got != "1.1\n" {
		t.Errorf("tag list with the server down: %q", got)
	}
}

// TestCatalogEmptyAndHelp: an empty registry lists [] (the spec's shape);
// serve --help shows the --tls usage as written.
func TestCatalogEmptyAndHelp(t *testing.T) {
	s := startRegistry(t, "")
	resp, err := httpClient.Get(s.URL("/v2/_catalog"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"repositories":[]}` {
		t.Errorf("_catalog of an empty registry: %d %s", resp.StatusCode, body)
	}
	help, _, err := runBerth(t, t.Context(), nil, "serve", "--help")
	if err != nil || !strings.Contains(help, "--tls  ") || !strings.Contains(help, "'berth tls init' wrote") {
		t.Errorf("serve --help: %v\n%s", err, help)
	}
}

// TestUserNames_OneGrammar: names that could be mistaken for another's
// namespace, or are not names, are refused; so is a short password.
func TestUserNames_OneGrammar(t *testing.T) {
	s, _ := startAuthServer(t, "")
	for _, name := range []string{"Bad Name", "UPPER", "alice/team", "alice@example.com"} {
		_, errOut, err := runBerth(t, t.Context(), strings.NewReader("long-enough-pw\n"), "--data", s.Data, "user", "add", name, "--password-stdin")
		if err == nil || !strings.Contains(errOut, "invalid user name") {
			t.Errorf("user add %q: %v %s", name, err, errOut)
		}
	}
	_, errOut, err := runBerth(t, t.Context(), strings.NewReader("x\n"), "--data", s.Data, "user", "add", "alice", "--password-stdin")
	if err == nil || !strings.Contains(errOut, "berth needs at least 8") {
		t.Errorf("user add with a 1-character password: %v %s", err, errOut)
	}
	s.addUser(t, "alice", "long-enough-pw")
	if list := s.berth(t, "", "user", "list"); strings.Contains(list, "UPPER") || !strings.Contains(list, "alice") {
		t.Errorf("user list:\n%s", list)
	}
}

// TestOwnership_RootKeepsDataOwner: `tls init` run as root on a stopped
// registry owned by the service's user leaves files that user owns; that
// user, on a directory it cannot open, is told whose it is and what to do.
func TestOwnership_RootKeepsDataOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs commands as root and as another user")
	}
	const service = 65534 // nobody
	s := startRegistry(t, "")
	stopRegistry(t, s)
	if err := filepath.Walk(s.Data, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, service, service)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(s.Data), 0o755); err != nil {
		t.Fatal(err)
	}
	s.berth(t, "", "tls", "init", "--host", "registry.lan")
	for _, f := range []string{"tls", "tls/ca.key", "tls/server.key", "tls/server.crt"} {
		fi, err := os.Stat(filepath.Join(s.Data, f))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != service {
			t.Errorf("%s belongs to uid %d after tls init as root, want %d", f, st.Uid, service)
		}
	}

	// Now the other way: a root-owned registry, and a user who is neither.
	other := startRegistry(t, "")
	stopRegistry(t, other)
	os.Chmod(other.Data, 0o755)
	os.Chmod(filepath.Dir(other.Data), 0o755)
	os.Chmod(filepath.Join(other.Data, "meta.db"), 0o600)
	// The test binary's directory is private: run a copy the user can reach.
	binDir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(binDir)
	os.Chmod(binDir, 0o755)
	bin, _ := os.ReadFile(berthBin)
	if err := os.WriteFile(filepath.Join(binDir, "berth"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "berth"), "--data", other.Data, "user", "list")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: service, Gid: service}}
	out, err := cmd.CombinedOutput()
	want := "belongs to user root (uid 0), and no server of yours answers on " + filepath.Join(other.Data, "control.sock")
	if err == nil || !strings.Contains(string(out), "permission denied") || !strings.Contains(string(out), want) ||
		!strings.Contains(string(out), "Try: sudo -u root berth --data "+other.Data+" user list") {
		t.Errorf("user list as another user: %v\n%s", err, out)
	}
	cmd = exec.Command(filepath.Join(binDir, "berth"), "--data", other.Data, "serve", "--addr", freeAddr(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: service, Gid: service}}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "belongs to user root (uid 0)\nTry: start berth as that user") {
		t.Errorf("serve as another user: %v\n%s", err, out)
	}
}

// TestFirstStart_DiskFull (issue 19 point 8) starts berth for the first
// time on a full disk: it fails saying so, and leaves neither an admin nor
// a password file; once there is room, a start creates both.
func TestFirstStart_DiskFull(t *testing.T) {
	data := mountTmpfs(t, "1m")
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	filler, err := os.Create(filepath.Join(data, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for i := 0; i < 1024; i++ { // at most 4 MiB: the tmpfs holds 1
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	out, err := runServe(t, data, "--addr", freeAddr(t))
	if err == nil || !strings.Contains(out, "no user created") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("first start on a full disk: %v\n%s", err, out)
	}
	if strings.Contains(out, "created user") {
		t.Errorf("a failed first start claims a user:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, "initial-admin-password")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed first start left initial-admin-password: %v", err)
	}
	os.Remove(filepath.Join(data, "filler"))
	if list, _, err := runBerth(t, t.Context(), nil, "--data", data, "user", "list"); err != nil || strings.Contains(list, "admin") {
		t.Errorf("user list after the failed start: %v\n%s", err, list)
	}
	_, password := startAuthServer(t, data)
	if password == "" {
		t.Errorf("the start with room wrote an empty password")
	}
}
