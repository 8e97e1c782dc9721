package store

import (
	"fmt"
	"strings"
)

// MaxNameLength is the longest repository name berth accepts. The
// distribution spec notes that many clients limit hostname plus name to 255
// characters; registry:2 applies the same limit to the name alone.
const MaxNameLength = 255

// MaxTagLength is the longest tag the distribution-spec grammar admits.
const MaxTagLength = 128

// ValidateRepository checks name against the distribution-spec grammar
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// and against MaxNameLength. It returns nil for a valid name, otherwise an
// error wrapping ErrNameInvalid whose message says what is wrong and where.
// It does not allocate for a valid name: it runs on every request.
func ValidateRepository(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrNameInvalid)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: name is %d bytes long, more than %d", ErrNameInvalid, len(name), MaxNameLength)
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		if problem := componentProblem(name[start:i], start, "a-z, 0-9, '.', '_', '-', '/'"); problem != "" {
			return fmt.Errorf("%w: %q: %s", ErrNameInvalid, name, problem)
		}
		start = i + 1
	}
	return nil
}

// componentProblem checks one path component against
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* and returns what is wrong with it, or ""
// when nothing is. offset is where the component starts in the whole name;
// allowed lists the characters the whole name may have, for the message.
func componentProblem(c string, offset int, allowed string) string {
	if c == "" {
		return fmt.Sprintf("empty path component at offset %d", offset)
	}
	i := 0
	for i < len(c) {
		if isNameAlnum(c[i]) {
			i++
			continue
		}
		if c[i] >= 'A' && c[i] <= 'Z' {
			return fmt.Sprintf("upper-case letter %q at offset %d (names are lower-case)", c[i:i+1], offset+i)
		}
		if !isNameSeparator(c[i]) {
			return fmt.Sprintf("character %q at offset %d is not allowed (only %s)", c[i:i+1], offset+i, allowed)
		}
		if i == 0 {
			return fmt.Sprintf("path component at offset %d starts with separator %q", offset, c[i:i+1])
		}
		run := i
		for i < len(c) && isNameSeparator(c[i]) {
			i++
		}
		if sep := c[run:i]; !validNameSeparator(sep) {
			return fmt.Sprintf("separator %q at offset %d is not one of '.', '_', '__' or dashes", sep, offset+run)
		}
		if i == len(c) {
			return fmt.Sprintf("path component at offset %d ends with a separator", offset)
		}
	}
	return ""
}

func isNameAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isNameSeparator(c byte) bool { return c == '.' || c == '_' || c == '-' }

// validNameSeparator reports whether a run of separator characters is one of
// the grammar's separators: ".", "_", "__", or one or more "-".
func validNameSeparator(s string) bool {
	switch s {
	case ".", "_", "__":
		return true
	}
	return strings.Trim(s, "-") == ""
}

// ValidateTag checks tag against the distribution-spec grammar
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. It returns nil for a valid tag,
// otherwise an error wrapping ErrTagInvalid. It does not allocate for a valid
// tag.
func ValidateTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("%w: tag is empty", ErrTagInvalid)
	}
	if len(tag) > MaxTagLength {
		return fmt.Errorf("%w: tag is %d bytes long, more than %d", ErrTagInvalid, len(tag), MaxTagLength)
	}
	if c := tag[0]; c == '.' || c == '-' {
		return fmt.Errorf("%w: %q starts with %q", ErrTagInvalid, tag, tag[:1])
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%w: %q: character %q at offset %d is not allowed", ErrTagInvalid, tag, tag[i:i+1], i)
		}
	}
	return nil
}

// Reference names a manifest within a repository: exactly one of Tag or
// Digest is set in a Reference returned by ParseReference.
type Reference struct {
	Tag    string
	Digest Digest
}

// String returns the digest when the reference has one, else the tag: the
// form ParseReference accepts.
func (r Reference) String() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}

// ParseReference parses the <reference> of /v2/<name>/manifests/<reference>.
// A string containing ':' can only be a digest (tags cannot contain one) and
// is parsed with ParseDigest, whose ErrDigestInvalid or ErrDigestUnsupported
// errors pass through; anything else is checked as a tag (ErrTagInvalid).
func ParseReference(s string) (Reference, error) {
	if strings.IndexByte(s, ':') >= 0 {
		d, err := ParseDigest(s)
		if err != nil {
			return Reference{}, err
		}
		return Reference{Digest: d}, nil
	}
	if err := ValidateTag(s); err != nil {
		return Reference{}, err
	}
	return Reference{Tag: s}, nil
}
