package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/store"
)

// errNotFound is returned by parseTarget for a path under /v2/ that has the
// shape of no endpoint.
var errNotFound = errors.New("no such endpoint")

// kind is which endpoint of the distribution spec a /v2/ path names.
type kind int

const (
	kindBase        kind = iota + 1 // /v2/
	kindCatalog                     // /v2/_catalog
	kindManifest                    // /v2/<name>/manifests/<reference>
	kindBlob                        // /v2/<name>/blobs/<digest>
	kindUploadStart                 // /v2/<name>/blobs/uploads/
	kindUpload                      // /v2/<name>/blobs/uploads/<id>
	kindTags                        // /v2/<name>/tags/list
	kindReferrers                   // /v2/<name>/referrers/<digest>
)

// target is what a /v2/ path names. Repo is a valid repository name, empty
// for kindBase and kindCatalog. Ref is the last path component for the
// kinds that have one: the reference of a manifest, the digest of a blob or
// referrers subject, the id of an upload. It is not validated, except that
// an upload id is one berth could have issued; the handler parses it.
type target struct {
	Kind kind
	Repo string
	Ref  string
}

// parseTarget parses the path after "/v2/", without its leading slash.
// Repository names contain slashes and may have components such as "blobs"
// or "tags", so the path is read from the right: the endpoint's fixed words
// come last, and whatever precedes them is the name.
//
// It returns an error wrapping errNotFound for a path that matches no
// endpoint, the error of store.ValidateRepository (wrapping
// store.ErrNameInvalid) for an invalid name, and one wrapping
// store.ErrUploadUnknown for an upload id berth cannot have issued.
func parseTarget(tail string) (target, error) {
	switch tail {
	case "":
		return target{Kind: kindBase}, nil
	case "_catalog":
		return target{Kind: kindCatalog}, nil
	}
	t, err := splitTarget(tail)
	if err != nil {
		return target{}, err
	}
	if err := store.ValidateRepository(t.Repo); err != nil {
		return target{}, err
	}
	if t.Kind == kindUpload && !store.ValidUploadID(t.Ref) {
		return target{}, fmt.Errorf("%w: malformed upload id", store.ErrUploadUnknown)
	}
	return t, nil
}

// splitTarget finds the endpoint words at the end of tail and returns the
// target with the name still unchecked.
func splitTarget(tail string) (target, error) {
	// POST .../blobs/uploads/ is how the spec writes it; some clients
	// leave the trailing slash off.
	for _, suffix := range []string{"/blobs/uploads/", "/blobs/uploads"} {
		if repo, ok := strings.CutSuffix(tail, suffix); ok {
			return target{Kind: kindUploadStart, Repo: repo}, nil
		}
	}
	if repo, ok := strings.CutSuffix(tail, "/tags/list"); ok {
		return target{Kind: kindTags, Repo: repo}, nil
	}
	rest, ref, ok := cutLast(tail)
	if !ok || ref == "" {
		return target{}, fmt.Errorf("%w: %q", errNotFound, tail)
	}
	repo, word, ok := cutLast(rest)
	if !ok {
		return target{}, fmt.Errorf("%w: %q", errNotFound, tail)
	}
	switch word {
	case "manifests":
		return target{Kind: kindManifest, Repo: repo, Ref: ref}, nil
	case "blobs":
		return target{Kind: kindBlob, Repo: repo, Ref: ref}, nil
	case "referrers":
		return target{Kind: kindReferrers, Repo: repo, Ref: ref}, nil
	case "uploads":
		if repo, ok := strings.CutSuffix(repo, "/blobs"); ok {
			return target{Kind: kindUpload, Repo: repo, Ref: ref}, nil
		}
	}
	return target{}, fmt.Errorf("%w: %q", errNotFound, tail)
}

// cutLast splits s at its last slash.
func cutLast(s string) (before, after string, found bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// path formats t back into the path after "/v2/" that parseTarget reads as
// t; the canonical form, with the trailing slash of an upload start.
func (t target) path() string {
	switch t.Kind {
	case kindBase:
		return ""
	case kindCatalog:
		return "_catalog"
	case kindManifest:
		return t.Repo + "/manifests/" + t.Ref
	case kindBlob:
		return t.Repo + "/blobs/" + t.Ref
	case kindUploadStart:
		return t.Repo + "/blobs/uploads/"
	case kindUpload:
		return t.Repo + "/blobs/uploads/" + t.Ref
	case kindTags:
		return t.Repo + "/tags/list"
	case kindReferrers:
		return t.Repo + "/referrers/" + t.Ref
	}
	return ""
}
