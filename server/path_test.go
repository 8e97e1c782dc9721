package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

const testDigest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name    string
		tail    string
		want    target
		wantErr error
	}{
		{"base", "", target{Kind: kindBase}, nil},
		{"catalog", "_catalog", target{Kind: kindCatalog}, nil},
		{"manifest by tag", "library/alpine/manifests/3.20", target{kindManifest, "library/alpine", "3.20"}, nil},
		{"manifest by digest", "a/manifests/" + testDigest, target{kindManifest, "a", testDigest}, nil},
		{"manifest reference is raw", "a/manifests/Not:A:Digest", target{kindManifest, "a", "Not:A:Digest"}, nil},
		{"blob", "a/b/c/blobs/" + testDigest, target{kindBlob, "a/b/c", testDigest}, nil},
		{"upload start", "a/b/blobs/uploads/", target{kindUploadStart, "a/b", ""}, nil},
		{"upload start without slash", "a/b/blobs/uploads", target{kindUploadStart, "a/b", ""}, nil},
		{"upload", "a/b/blobs/uploads/0123456789abcdef0123456789abcdef", target{kindUpload, "a/b", "0123456789abcdef0123456789abcdef"}, nil},
		{"upload id with dash and underscore", "a/blobs/uploads/A-b_9", target{}, store.ErrUploadUnknown},
		{"upload id in upper case", "a/blobs/uploads/0123456789ABCDEF0123456789ABCDEF", target{}, store.ErrUploadUnknown},
		{"tags", "a/b/tags/list", target{kindTags, "a/b", ""}, nil},
		{"referrers", "a/referrers/" + testDigest, target{kindReferrers, "a", testDigest}, nil},

		// Names made of the endpoint words: the right-most words decide.
		{"name with manifests component", "manifests/manifests/latest", target{kindManifest, "manifests", "latest"}, nil},
		{"name with blobs component", "blobs/blobs/" + testDigest, target{kindBlob, "blobs", testDigest}, nil},
		{"name ending in blobs/uploads", "x/blobs/uploads/blobs/uploads/", target{kindUploadStart, "x/blobs/uploads", ""}, nil},
		{"name ending in tags", "x/tags/tags/list", target{kindTags, "x/tags", ""}, nil},
		{"name ending in tags/list", "x/tags/list/manifests/v1", target{kindManifest, "x/tags/list", "v1"}, nil},
		{"name with referrers component", "referrers/referrers/" + testDigest, target{kindReferrers, "referrers", testDigest}, nil},
		{"upload under name with uploads", "uploads/blobs/uploads/0123456789abcdef0123456789abcdef", target{kindUpload, "uploads", "0123456789abcdef0123456789abcdef"}, nil},

		{"no endpoint word", "a/b", target{}, errNotFound},
		{"single component", "alpine", target{}, errNotFound},
		{"unknown endpoint word", "a/layers/" + testDigest, target{}, errNotFound},
		{"missing name", "manifests/latest", target{}, errNotFound},
		{"empty reference", "a/manifests/", target{}, errNotFound},
		{"trailing slash after reference", "a/manifests/latest/", target{}, errNotFound},
		{"uploads without blobs", "a/uploads/abc", target{}, errNotFound},
		{"tags without list", "a/tags/", target{}, errNotFound},
		{"catalog with slash", "_catalog/", target{}, errNotFound},
		{"leading slash", "/a/manifests/latest", target{}, store.ErrNameInvalid},
		{"double slash in name", "a//b/manifests/latest", target{}, store.ErrNameInvalid},
		{"upper-case name", "Library/manifests/latest", target{}, store.ErrNameInvalid},
		{"empty name before blobs/uploads", "/blobs/uploads/", target{}, store.ErrNameInvalid},
		{"name too long", strings.Repeat("a", store.MaxNameLength+1) + "/tags/list", target{}, store.ErrNameInvalid},
		{"dot-dot segment", "a/blobs/uploads/../x", target{}, errNotFound},
		{"upload id with dot", "a/blobs/uploads/ab.cd", target{}, store.ErrUploadUnknown},
		{"upload id with bad character", "a/blobs/uploads/ab%2F", target{}, store.ErrUploadUnknown},
		{"upload id too long", "a/blobs/uploads/" + strings.Repeat("f", 33), target{}, store.ErrUploadUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTarget(tc.tail)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("parseTarget(%q) = %+v, %v; want error %v", tc.tail, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseTarget(%q) = %+v, %v; want %+v", tc.tail, got, err, tc.want)
			}
			if again, err := parseTarget(got.path()); err != nil || again != got {
				t.Errorf("parseTarget(%q) (from path()) = %+v, %v; want %+v", got.path(), again, err, got)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, seed := range []string{
		"", "_catalog", "a/b/manifests/latest", "a/blobs/" + testDigest,
		"a/blobs/uploads/", "a/blobs/uploads", "a/blobs/uploads/0123abcd",
		"a/tags/list", "a/referrers/" + testDigest, "x/blobs/uploads/blobs/uploads/",
		"a//b/tags/list", "a/manifests/", "a/b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tail string) {
		got, err := parseTarget(tail)
		if err != nil {
			if !errors.Is(err, errNotFound) && !errors.Is(err, store.ErrNameInvalid) && !errors.Is(err, store.ErrUploadUnknown) {
				t.Fatalf("parseTarget(%q) error %v wraps none of the documented errors", tail, err)
			}
			return
		}
		p := got.path()
		// What was accepted is the canonical path, up to the one
		// trailing slash an upload start may leave off.
		if p != tail && !(got.Kind == kindUploadStart && p == tail+"/") {
			t.Fatalf("parseTarget(%q) = %+v, whose path is %q", tail, got, p)
		}
		if again, err := parseTarget(p); err != nil || again != got {
			t.Fatalf("parseTarget(%q) = %+v, but its path %q parses as %+v, %v", tail, got, p, again, err)
		}
		switch got.Kind {
		case kindBase, kindCatalog:
			if got.Repo != "" || got.Ref != "" {
				t.Fatalf("parseTarget(%q) = %+v: base and catalog have no name", tail, got)
			}
			return
		case kindManifest, kindBlob, kindReferrers:
			if got.Ref == "" || strings.Contains(got.Ref, "/") {
				t.Fatalf("parseTarget(%q) = %+v: reference must be one non-empty component", tail, got)
			}
		case kindUpload:
			if !store.ValidUploadID(got.Ref) {
				t.Fatalf("parseTarget(%q) = %+v: malformed upload id accepted", tail, got)
			}
		}
		if err := store.ValidateRepository(got.Repo); err != nil {
			t.Fatalf("parseTarget(%q) = %+v with an invalid name: %v", tail, got, err)
		}
	})
}
