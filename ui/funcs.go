package ui

import (
	"html/template"
	"strings"
	"time"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/store"
)

// funcs are the templates' helpers. None returns template.HTML: every
// value reaching a page is escaped by html/template.
var funcs = template.FuncMap{
	"bytes": admin.HumanBytes,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"short": func(d store.Digest) string {
		s := string(d)
		if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
			return s[:i+13]
		}
		return s
	},
	"join": strings.Join,
}
