package store

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The grammars as the distribution spec writes them, used as the oracle for
// the hand-written checks.
var (
	nameGrammar = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagGrammar  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

func TestValidateRepository(t *testing.T) {
	longest := strings.Repeat("a/", 127) + "b" // 255 bytes
	tests := []struct {
		name    string
		input   string
		wantErr string // substring of the message; "" means valid
	}{
		{"OneLetter", "a", ""},
		{"OneDigit", "0", ""},
		{"TwoComponents", "library/ubuntu", ""},
		{"Nested", "a/b/c", ""},
		{"DeeplyNested", "org/team/project/service/image", ""},
		{"Dot", "a.b", ""},
		{"Underscore", "a_b", ""},
		{"DoubleUnderscore", "a__b", ""},
		{"Dash", "a-b", ""},
		{"ManyDashes", "a---b", ""},
		{"MixedSeparators", "9a/b-c.d__e_f--g", ""},
		{"ComponentsLookLikeAPI", "x/blobs/manifests/tags", ""},
		{"LongestAllowed", longest, ""},

		{"Empty", "", "name is empty"},
		{"TooLong", longest + "c", "more than 255"},
		{"UpperCase", "Library/ubuntu", `upper-case letter "L" at offset 0`},
		{"UpperCaseInSecondComponent", "library/Ubuntu", `upper-case letter "U" at offset 8`},
		{"EmptyComponentInMiddle", "a//b", "empty path component at offset 2"},
		{"LeadingSlash", "/a", "empty path component at offset 0"},
		{"TrailingSlash", "a/", "empty path component at offset 2"},
		{"OnlySlash", "/", "empty path component"},
		{"DoubleDot", "a..b", `separator ".."`},
		{"DotUnderscore", "a._b", `separator "._"`},
		{"TripleUnderscore", "a___b", `separator "___"`},
		{"DashDot", "a-.b", `separator "-."`},
		{"LeadingUnderscore", "_a", "starts with separator"},
		{"LeadingDash", "-a", "starts with separator"},
		{"LeadingDotInComponent", "a/.b", "starts with separator"},
		{"TrailingUnderscore", "a_", "ends with a separator"},
		{"TrailingDash", "a/b-", "ends with a separator"},
		{"Space", "a b", `character " "`},
		{"Colon", "a:b", `character ":"`},
		{"At", "a@b", `character "@"`},
		{"NUL", "a\x00b", `character "\x00"`},
		{"NonASCII", "caf\xc3\xa9", `character "\xc3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRepository(tc.input)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateRepository(%q) = %v, want nil", tc.input, err)
				}
				return
			}
			if !errors.Is(err, ErrNameInvalid) {
				t.Fatalf("ValidateRepository(%q) = %v, want ErrNameInvalid", tc.input, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateRepository(%q) = %q, want message containing %q", tc.input, err, tc.wantErr)
			}
		})
	}
}

func TestValidateTag(t *testing.T) {
	longest := "v" + strings.Repeat("1", 127)
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"Latest", "latest", ""},
		{"Semver", "v1.0.0", ""},
		{"UpperCase", "RELEASE-Candidate_1", ""},
		{"Underscore", "_", ""},
		{"LeadingUnderscore", "_private", ""},
		{"Digit", "0", ""},
		{"AllSeparators", "a.-_b", ""},
		{"LongestAllowed", longest, ""},

		{"Empty", "", "tag is empty"},
		{"TooLong", longest + "1", "more than 128"},
		{"LeadingDot", ".hidden", `starts with "."`},
		{"LeadingDash", "-rc", `starts with "-"`},
		{"Colon", "a:b", `character ":" at offset 1`},
		{"Slash", "a/b", `character "/" at offset 1`},
		{"Plus", "1.0+build", `character "+" at offset 3`},
		{"Space", "a b", `character " "`},
		{"NonASCII", "caf\xc3\xa9", `character "\xc3" at offset 3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTag(tc.input)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateTag(%q) = %v, want nil", tc.input, err)
				}
				return
			}
			if !errors.Is(err, ErrTagInvalid) {
				t.Fatalf("ValidateTag(%q) = %v, want ErrTagInvalid", tc.input, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateTag(%q) = %q, want message containing %q", tc.input, err, tc.wantErr)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	sha256Ref := "sha256:" + strings.Repeat("ab", 32)
	sha512Ref := "sha512:" + strings.Repeat("cd", 64)
	tests := []struct {
		name    string
		input   string
		want    Reference
		wantErr error
	}{
		{"Tag", "latest", Reference{Tag: "latest"}, nil},
		{"TagLookingLikeAlgorithm", "sha256", Reference{Tag: "sha256"}, nil},
		{"SHA256", sha256Ref, Reference{Digest: Digest(sha256Ref)}, nil},
		{"SHA512", sha512Ref, Reference{Digest: Digest(sha512Ref)}, nil},

		{"Empty", "", Reference{}, ErrTagInvalid},
		{"BadTag", "-rc1", Reference{}, ErrTagInvalid},
		{"TagWithSlash", "a/b", Reference{}, ErrTagInvalid},
		{"ConformanceBadDigest", "sha256:baddigeststring", Reference{}, ErrDigestInvalid},
		{"UpperCaseHex", "sha256:" + strings.Repeat("AB", 32), Reference{}, ErrDigestInvalid},
		{"ShortHex", sha256Ref[:len(sha256Ref)-1], Reference{}, ErrDigestInvalid},
		{"EmptyEncoded", "sha256:", Reference{}, ErrDigestInvalid},
		{"OnlyColon", ":", Reference{}, ErrDigestInvalid},
		{"TagWithColon", "v1:latest", Reference{}, ErrDigestUnsupported},
		{"OtherAlgorithm", "sha384:" + strings.Repeat("ab", 48), Reference{}, ErrDigestUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReference(tc.input)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseReference(%q) error = %v, want %v", tc.input, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q) = %v", tc.input, err)
			}
			if got != tc.want {
				t.Errorf("ParseReference(%q) = %+v, want %+v", tc.input, got, tc.want)
			}
			if got.String() != tc.input {
				t.Errorf("ParseReference(%q).String() = %q", tc.input, got.String())
			}
		})
	}
}

// The checks run on every request; valid input must not allocate.
func TestValidate_NoAllocationsWhenValid(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	checks := []struct {
		name string
		fn   func() error
	}{
		{"ValidateRepository", func() error { return ValidateRepository("org/team/some-image_name.v2") }},
		{"ValidateTag", func() error { return ValidateTag("v1.2.3-rc_1") }},
		{"ParseReferenceTag", func() error { _, err := ParseReference("latest"); return err }},
		{"ParseReferenceDigest", func() error { _, err := ParseReference(digest); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(100, func() { err = c.fn() })
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%s allocates %v times per call, want 0", c.name, allocs)
			}
		})
	}
}

func FuzzValidateRepository(f *testing.F) {
	for _, seed := range []string{"library/ubuntu", "a__b/c---d.e", "a..b", "A/b", "a//b", strings.Repeat("a", 256)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateRepository(name)
		matches := len(name) <= MaxNameLength && nameGrammar.MatchString(name)
		if (err == nil) != matches {
			t.Fatalf("ValidateRepository(%q) = %v, but grammar match = %v", name, err, matches)
		}
		if err != nil && !errors.Is(err, ErrNameInvalid) {
			t.Fatalf("ValidateRepository(%q) = %v, want ErrNameInvalid", name, err)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, seed := range []string{"latest", "v1.0", "-x", "sha256:" + strings.Repeat("0", 64), "sha256:baddigeststring", "sha384:ab", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrTagInvalid) && !errors.Is(err, ErrDigestInvalid) && !errors.Is(err, ErrDigestUnsupported) {
				t.Fatalf("ParseReference(%q) = %v, want a tag or digest error", s, err)
			}
			if !strings.Contains(s, ":") && tagGrammar.MatchString(s) {
				t.Fatalf("ParseReference(%q) refused a tag the grammar accepts: %v", s, err)
			}
			return
		}
		if (ref.Tag == "") == (ref.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v, want exactly one of Tag and Digest", s, ref)
		}
		if ref.String() != s {
			t.Fatalf("ParseReference(%q).String() = %q, want the input back", s, ref.String())
		}
		if ref.Tag != "" && !tagGrammar.MatchString(ref.Tag) {
			t.Fatalf("ParseReference(%q) accepted a tag outside the grammar", s)
		}
		if ref.Digest != "" {
			if _, err := ParseDigest(s); err != nil {
				t.Fatalf("ParseReference(%q) accepted a digest ParseDigest refuses: %v", s, err)
			}
		}
	})
}
