package store

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Pattern is a glob over repository names or tags, as retention and
// immutability rules write them: "**" matches any run of characters, '/'
// included ("apps/**" covers "apps/web/api"); "*" matches a run without
// '/'; "?" one character other than '/'. Several globs may be given,
// separated by commas; the pattern matches when any does.
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// ParsePattern compiles s. It fails for an empty glob.
func ParsePattern(s string) (Pattern, error) {
	var alts []string
	for _, g := range strings.Split(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			return Pattern{}, fmt.Errorf("empty glob in pattern %q", s)
		}
		var b strings.Builder
		for i := 0; i < len(g); i++ {
			switch {
			case strings.HasPrefix(g[i:], "**"):
				b.WriteString(`.*`)
				i++
			case g[i] == '*':
				b.WriteString(`[^/]*`)
			case g[i] == '?':
				b.WriteString(`[^/]`)
			default:
				b.WriteString(regexp.QuoteMeta(g[i : i+1]))
			}
		}
		alts = append(alts, b.String())
	}
	re, err := regexp.Compile(`^(?:` + strings.Join(alts, "|") + `)$`)
	if err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", s, err)
	}
	return Pattern{src: s, re: re}, nil
}

// Match reports whether name matches p.
func (p Pattern) Match(name string) bool { return p.re != nil && p.re.MatchString(name) }

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// signatureTag matches the fallback tags that cosign and the OCI referrers
// fallback push beside an image: "sha256-<hex>" with an optional suffix
// such as ".sig", ".att" or ".sbom". It and objectName are compiled on
// first use, not in every process at start: a bounded repeat such as {64}
// compiles to that many copies of its instructions (issue 18, idle memory).
var signatureTag = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.[A-Za-z0-9_-]+)?$`)
})

// objectName is the grammar of the names of retention rules and webhooks.
var objectName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`) })

// SignatureSubject returns the digest a fallback tag names ("sha256-<hex>",
// "sha256-<hex>.sig"), and false for any other tag.
func SignatureSubject(tag string) (Digest, bool) {
	m := signatureTag().FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return Digest("sha256:" + m[1]), true
}
