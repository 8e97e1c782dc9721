package ui

import (
	"html/template"
	"io/fs"
	"strings"
	"sync"
)

// pages returns the parsed templates by page name ("repositories" for
// templates/repositories.html), each joined with base.html. They are
// parsed once, on the first page rendered rather than at start: the parse
// allocates about 0.4 MB and runs html/template's parser, which a server
// that nobody browses never needs (issue 18, idle memory). The templates
// are embedded, so an error is a bug; TestPages_Parse finds it.
var pages = sync.OnceValues(func() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		if strings.HasSuffix(n, "/base.html") {
			continue
		}
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFiles, "templates/base.html", n)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return out, nil
})
