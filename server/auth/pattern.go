package auth

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
)

// accountPlaceholder stands for the caller's account in a rule pattern, as
// in docker_auth.
const accountPlaceholder = "${account}"

type patternKind int

const (
	exactPattern patternKind = iota
	globPattern
	regexPattern
	deepGlobPattern // a glob with **, matched through its regular expression
)

// pattern is one compiled match field of an access rule, with docker_auth's
// semantics:
//   - "/re/" (longer than two bytes) is a Go regular expression, matched
//     unanchored as docker_auth's regexp.Match does: write ^ and $ to anchor;
//   - a pattern with one of * ? [ \ is a path.Match glob, so * and ? never
//     match '/' ("alice/*" covers alice/app, not alice/team/app);
//   - a glob with ** lets ** match across '/' ("apps/**" covers apps/app
//     and apps/team/app, not apps itself), anchored at both ends; its
//     other * and ? still stop at '/';
//   - anything else must equal the value.
//
// ${account} is replaced by the caller's account, quoted for the pattern's
// kind so an account name cannot inject pattern syntax. Unlike docker_auth,
// the kind is decided on the pattern as written, before substitution, so an
// account cannot turn a glob into a regular expression either.
type pattern struct {
	raw     string
	kind    patternKind
	dynamic bool           // contains ${account}
	re      *regexp.Regexp // regexPattern without ${account}

	// perAccount caches the regular expressions of a dynamic regexPattern,
	// one per account, so matching compiles once per account, not per call.
	mu         sync.Mutex
	perAccount map[string]*regexp.Regexp
}

// maxCachedAccountRegexps bounds perAccount; when full it starts over, which
// costs recompiling, never correctness.
const maxCachedAccountRegexps = 256

func compilePattern(raw string) (*pattern, error) {
	p := &pattern{raw: raw, dynamic: strings.Contains(raw, accountPlaceholder)}
	switch {
	case len(raw) > 2 && raw[0] == '/' && raw[len(raw)-1] == '/':
		p.kind = regexPattern
		expr := raw[1 : len(raw)-1]
		if p.dynamic {
			expr = strings.ReplaceAll(expr, accountPlaceholder, "account")
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", raw, err)
		}
		if !p.dynamic {
			p.re = re
		}
	case strings.Contains(raw, "**"):
		p.kind = deepGlobPattern
		re, err := deepGlobRegexp(strings.ReplaceAll(raw, accountPlaceholder, "account"))
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", raw, err)
		}
		if !p.dynamic {
			p.re = re
		}
	case strings.ContainsAny(raw, `*?[\`):
		p.kind = globPattern
		if _, err := path.Match(strings.ReplaceAll(raw, accountPlaceholder, "account"), ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", raw, err)
		}
	}
	return p, nil
}

// match reports whether value matches p for a caller with account ("" for
// anonymous).
func (p *pattern) match(account, value string) bool {
	switch p.kind {
	case regexPattern, deepGlobPattern:
		re := p.re
		if p.dynamic {
			re = p.regexpFor(account)
		}
		return re != nil && re.MatchString(value)
	case globPattern:
		pat := p.raw
		if p.dynamic {
			pat = strings.ReplaceAll(pat, accountPlaceholder, quoteGlob(account))
		}
		ok, err := path.Match(pat, value)
		return err == nil && ok
	default:
		want := p.raw
		if p.dynamic {
			want = strings.ReplaceAll(want, accountPlaceholder, account)
		}
		return want == value
	}
}

// regexpFor returns p's regular expression with account substituted, or nil
// when the substitution does not compile (such a rule matches nothing).
func (p *pattern) regexpFor(account string) *regexp.Regexp {
	p.mu.Lock()
	defer p.mu.Unlock()
	if re, ok := p.perAccount[account]; ok {
		return re
	}
	if p.perAccount == nil || len(p.perAccount) >= maxCachedAccountRegexps {
		p.perAccount = make(map[string]*regexp.Regexp)
	}
	var re *regexp.Regexp
	if p.kind == deepGlobPattern {
		re, _ = deepGlobRegexp(strings.ReplaceAll(p.raw, accountPlaceholder, quoteGlob(account)))
	} else {
		expr := strings.ReplaceAll(p.raw[1:len(p.raw)-1], accountPlaceholder, regexp.QuoteMeta(account))
		re, _ = regexp.Compile(expr)
	}
	p.perAccount[account] = re
	return re
}

// quoteGlob escapes the bytes path.Match treats as syntax.
func quoteGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deepGlobRegexp translates a glob with ** into an anchored regular
// expression: ** matches any run of bytes ('/' included), * any run without
// '/', ? one byte other than '/', [...] a class as in path.Match, and \x the
// byte x.
func deepGlobRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 >= len(glob) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		case '[':
			j := strings.IndexByte(glob[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed character class")
			}
			class := glob[i+1 : i+1+j]
			if strings.HasPrefix(class, "^") {
				class = "^" + strings.ReplaceAll(class[1:], `\`, `\\`)
			} else {
				class = strings.ReplaceAll(class, `\`, `\\`)
			}
			if class == "" || class == "^" {
				return nil, fmt.Errorf("empty character class")
			}
			b.WriteString("[" + class + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// PatternMatchesAnonymous reports whether the account pattern raw would
// match the anonymous account "" under docker_auth's rules, where globs
// and regular expressions match "" too ("*", "/.*/"). berth's rules match
// anonymous only with the account "" itself; acl import uses this to keep
// a docker_auth file's meaning. A pattern that does not compile matches
// nothing.
func PatternMatchesAnonymous(raw string) bool {
	if strings.Contains(raw, accountPlaceholder) {
		return false
	}
	p, err := compilePattern(raw)
	return err == nil && p.match("", "")
}
