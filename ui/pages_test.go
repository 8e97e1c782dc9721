package ui

import (
	"io/fs"
	"strings"
	"testing"
)

// TestPages_Parse: every embedded page template parses with base.html,
// which New no longer checks (pages parses on first use).
func TestPages_Parse(t *testing.T) {
	all, err := pages()
	if err != nil {
		t.Fatalf("templates do not parse: %v", err)
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(names)-1 || len(all) < 5 {
		t.Fatalf("%d pages parsed from %d files (base.html is no page): %v", len(all), len(names), names)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		if all[name] == nil || all[name].Lookup("base.html") == nil {
			t.Errorf("page %s is missing or not joined with base.html", name)
		}
	}
}
