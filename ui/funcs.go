package ui

import (
	"html/template"
	"strconv"
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
	// ago says how long before now t was, to a useful precision.
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return strconv.Itoa(int(d.Minutes())) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d.Hours())) + " h ago"
		}
		return strconv.Itoa(int(d.Hours()/24)) + " days ago"
	},
	"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}
