package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-registry/berth"

// TestImportDirections keeps the package layout of docs (STYLE.md §1)
// true: imports point inward, toward store. It reads the non-test imports
// of every package with `go list`, the way go-containerregistry's
// depcheck_test.go pins its registry's dependencies.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	direct := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		direct[f[0]] = f[1:]
	}
	if len(direct) < 6 {
		t.Fatalf("go list found %d packages: %v", len(direct), direct)
	}
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	ours := func(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }
	under := func(p, dir string) bool { return p == module+"/"+dir || strings.HasPrefix(p, module+"/"+dir+"/") }

	for pkg, imports := range direct {
		for _, imp := range imports {
			switch {
			// backup speaks no HTTP itself. Through store it reaches
			// net/http: the S3 blob store (minio-go) is an HTTP client.
			case under(pkg, "backup") && imp == "net/http":
				t.Errorf("%s imports net/http: backup knows no HTTP", pkg)
			case imp == "go.etcd.io/bbolt" || strings.HasPrefix(imp, "go.etcd.io/bbolt/"):
				if !under(pkg, "store") {
					t.Errorf("%s imports %s: only store knows bbolt", pkg, imp)
				}
			case (under(imp, "fixtures") || under(imp, "internal/storetest")) && !under(pkg, "fixtures") && !under(pkg, "internal/storetest"):
				t.Errorf("%s imports %s, which is for tests only", pkg, imp)
			case imp == module:
				t.Errorf("%s imports main", pkg)
			}
		}
	}
	rules := []struct {
		pkg    string
		forbid func(dep string) bool
		why    string
	}{
		{"./store", func(d string) bool { return ours(d) && !under(d, "store") }, "store imports nothing of ours"},
		{"./server/...", func(d string) bool { return under(d, "admin") || under(d, "backup") }, "server never imports admin or backup"},
		{"./backup", func(d string) bool {
			return strings.HasPrefix(d, "github.com/gofiber/") || strings.HasPrefix(d, "github.com/valyala/") || under(d, "server") || under(d, "admin")
		}, "backup knows no HTTP server and nothing above it"},
		{"./server/auth", func(d string) bool { return ours(d) && !under(d, "store") && !under(d, "server/auth") }, "server/auth depends on store only"},
		{"./events", func(d string) bool { return ours(d) && !under(d, "store") && !under(d, "events") }, "events reads the store's outbox and depends on nothing else of ours"},
		{"./server/...", func(d string) bool { return under(d, "events") }, "server hands pull events to a callback; serve wires it to events"},
	}
	for _, r := range rules {
		for _, d := range deps(r.pkg) {
			if r.forbid(d) {
				t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
			}
		}
	}
}
