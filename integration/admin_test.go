package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/fixtures"
)

// adminRun is what one command printed and how it exited.
type adminRun struct {
	out, errOut string
	exit        int
}

// TestAdminCommands_SameStoppedAndServing runs every maintenance command,
// good and bad invocations, on two data directories that start equal: one
// with the server stopped (the command opens it) and one served (the
// command goes through DATA/control.sock). Stdout, stderr and the exit
// status must be byte-identical, once the two directories' own names and
// what is random or timed (backup ids, creation times) are made alike.
func TestAdminCommands_SameStoppedAndServing(t *testing.T) {
	stopped, serving := filepath.Join(t.TempDir(), "d"), filepath.Join(t.TempDir(), "d")
	files := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("imported-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	htpasswd := write("htpasswd", "carol:"+string(hash)+"\ndave:$apr1$abc$def\n")
	authConfig := write("auth_config.yml", "users:\n  erin:\n    password: \""+string(hash)+"\"\nacl:\n  - match: {account: erin, name: \"erin/*\"}\n    actions: [\"pull\", \"push\"]\n")
	notBackup := write("notes.txt", "not a backup")

	for _, data := range []string{stopped, serving} {
		fillStore(t, data, 2, 3, "")
		// A user, so that serve makes no initial admin of its own.
		if out, errOut, err := runBerth(t, t.Context(), strings.NewReader("first-password"), "user", "add", "admin", "--admin", "--password-stdin", "--data", data); err != nil {
			t.Fatalf("user add admin: %v\n%s%s", err, out, errOut)
		}
	}
	srv := startServer(t, serving)

	backupOut := func(data, name string) string { return filepath.Join(filepath.Dir(data), name) }
	steps := []struct {
		stdin string
		args  []string
	}{
		{"alice-password", []string{"user", "add", "alice", "--password-stdin"}},
		{"bob-password", []string{"user", "add", "bob", "--admin", "--password-stdin"}},
		{"again-password", []string{"user", "add", "alice", "--password-stdin"}},
		{"", []string{"user", "add", "nopassword", "--password-stdin"}},
		{"x-password", []string{"user", "add", "Bad:Name", "--password-stdin"}},
		{"", []string{"user", "add"}},
		{"bob-new-password", []string{"user", "passwd", "bob", "--password-stdin"}},
		{"pw-password", []string{"user", "passwd", "nobody", "--password-stdin"}},
		{"", []string{"user", "list"}},
		{"", []string{"user", "list", "extra"}},
		{"", []string{"user", "import-htpasswd", htpasswd}},
		{"", []string{"user", "import-htpasswd", filepath.Join(files, "missing")}},
		{"", []string{"acl", "add", "--account", "alice", "--name", "alice/*", "--actions", "pull,push"}},
		{"", []string{"acl", "add", "--actions", "pull", "--at", "9"}},
		{"", []string{"acl", "add", "--name", "x"}},
		{"", []string{"acl", "list"}},
		{"", []string{"acl", "import", authConfig}},
		{"", []string{"acl", "list"}},
		{"", []string{"acl", "del", "1"}},
		{"", []string{"acl", "del", "99"}},
		{"", []string{"acl", "del"}},
		{"", []string{"du"}},
		{"", []string{"du", "keep", "--json"}},
		{"", []string{"du", "nope"}},
		{"", []string{"du", "--bogus"}},
		{"", []string{"repo", "del", "nope"}},
		{"", []string{"repo", "del", "Bad/Name"}},
		{"", []string{"gc", "--dry-run", "--grace", "0s"}},
		{"", []string{"gc", "--grace", "-1h"}},
		{"", []string{"gc", "--grace", "0s"}},
		{"", []string{"repo", "del", "keep"}},
		{"", []string{"du"}},
		{"", []string{"verify"}},
		{"", []string{"verify", "--repair"}},
		{"", []string{"backup", "--output", "@full.tar.zst"}},
		{"", []string{"backup", "--output", "@inc.tar.zst", "--incremental-from", "@full.tar.zst"}},
		{"", []string{"backup", "--output", "@bad.tar.zst", "--incremental-from", notBackup}},
		{"", []string{"backup"}},
		{"", []string{"tls", "init", "--host", "registry.lan,192.168.1.10"}},
		{"", []string{"tls", "init", "--host", "registry.lan"}},
		{"", []string{"tls", "init", "--host", "other.lan", "--force", "--port", "443"}},
		{"", []string{"tls", "init"}},
		{"", []string{"tls", "init", "--host", "a.lan", "--key", "dsa"}},
		{"", []string{"import", "oci", fixtures.Path("multiarch"), "--repo", "imported/multi", "--dry-run"}},
		{"", []string{"import", "oci", fixtures.Path("multiarch"), "--repo", "imported/multi"}},
		{"", []string{"import", "registry2", filepath.Join(files, "missing")}},
		{"", []string{"import", "oci", fixtures.Path("multiarch"), "--jobs", "0"}},
		{"", []string{"du", "imported/multi"}},
		{"", []string{"user", "sessions", "bob"}},
		{"", []string{"user", "sessions", "nobody"}},
		{"", []string{"user", "revoke", "bob", "--all"}},
		{"", []string{"user", "revoke", "bob"}},
		{"", []string{"user", "revoke", "bob", "0123456789abcdef"}},
		{"", []string{"user", "del", "bob"}},
		{"", []string{"user", "del", "bob"}},
		{"", []string{"user", "list"}},
	}
	run := func(data string, stdin string, args []string) adminRun {
		t.Helper()
		full := make([]string, 0, len(args)+2)
		for _, a := range args {
			if strings.HasPrefix(a, "@") {
				a = backupOut(data, a[1:])
			}
			full = append(full, a)
		}
		full = append(full, "--data", data)
		out, errOut, err := runBerth(t, t.Context(), strings.NewReader(stdin), full...)
		r := adminRun{out: normalize(out, data), errOut: normalize(errOut, data)}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			r.exit = exit.ExitCode()
		case err != nil:
			t.Fatalf("berth %q: %v", args, err)
		}
		return r
	}
	failures := 0
	for _, st := range steps {
		local, remote := run(stopped, st.stdin, st.args), run(serving, st.stdin, st.args)
		if local != remote {
			t.Errorf("berth %s differs:\nstopped (exit %d):\n%s%s\nserving (exit %d):\n%s%s", strings.Join(st.args, " "),
				local.exit, local.out, local.errOut, remote.exit, remote.out, remote.errOut)
		}
		if local.exit != 0 {
			failures++
			if !strings.HasPrefix(local.errOut, "berth: ") || strings.Count(strings.TrimSpace(local.errOut), "\n") > 0 {
				t.Errorf("berth %s failed without a one-line message on stderr: %q", strings.Join(st.args, " "), local.errOut)
			}
		}
	}
	// The serving directory's commands ran in the server, not beside it.
	if n := len(srv.logLines("admin operation")); n < len(steps)-12 {
		t.Errorf("the server logged %d admin operations for %d commands", n, len(steps))
	}
	// The list above is meant to hold good and bad invocations of every
	// command; a change that made every one succeed would test less.
	if failures < 15 {
		t.Errorf("only %d of %d invocations failed: the bad ones no longer are", failures, len(steps))
	}
}

var (
	backupID   = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	createdAt  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	daysUntil  = regexp.MustCompile(`\d{4}-\d\d-\d\d`)
	metaDBSize = regexp.MustCompile(`meta\.db \([^)]*\)`)
	tookTime   = regexp.MustCompile(` in [0-9.]+(ns|µs|ms|s|m)\b`)
)

// normalize makes the output of a command on data comparable with the same
// command on another data directory.
func normalize(s, data string) string {
	s = strings.ReplaceAll(s, filepath.Dir(data), "DIR")
	s = backupID.ReplaceAllString(s, "ID")
	s = createdAt.ReplaceAllString(s, "TIME")
	s = daysUntil.ReplaceAllString(s, "DAY")
	s = tookTime.ReplaceAllString(s, " in TOOK")
	// meta.db's size depends on how its pages were allocated, which
	// differs with the order of writes between two processes.
	return metaDBSize.ReplaceAllString(s, "meta.db (SIZE)")
}
