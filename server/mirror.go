package server

import (
	"context"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// Mirror is the pull-through cache (package mirror), as the server calls
// it: an interface, so that server depends on store only. serve wires it.
type Mirror interface {
	// Route says whether a pull of repo (with containerd's ?ns=, "" when
	// absent) is a mirror's, the store repository its cache lives in, and
	// whether anonymous callers may pull it.
	Route(repo, ns string) (cached string, anonymous bool, ok bool)
	// Owns reports whether repo lies in a mirror's namespace (pull-only).
	Owns(repo string) bool
	// Manifest makes the manifest current in the store and says how
	// ("hit", "miss", "stale").
	Manifest(ctx context.Context, repo string, ref store.Reference) (string, error)
	// Blob returns a nil reader when the store holds the blob; else a
	// reader following the upstream fetch, and its size (-1: unknown).
	Blob(ctx context.Context, repo string, d store.Digest) (io.ReadCloser, int64, string, error)
	// Referrers brings the upstream's referrers of subject into the store.
	Referrers(ctx context.Context, repo string, subject store.Digest) (string, error)
}

// cacheKey is the c.Locals key of the mirror outcome the access log reads.
const cacheKey = "berth.cache"

// mirrorRequest is the one place a /v2 request meets the mirror, before
// the store is asked. It renames t into the mirror's namespace when the
// request is a mirror's (path prefix, ?ns=, Docker's registry-mirrors),
// refuses writes there. mirrored reports a pull of a mirror's repository,
// open one that may skip sign-in.
func (s *Server) mirrorRequest(c *fiber.Ctx, t *target) (mirrored, open bool, err error) {
	if s.mirror == nil || t.Repo == "" {
		return false, false, nil
	}
	read := c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead
	if !read || t.Kind == kindUploadStart || t.Kind == kindUpload {
		if s.mirror.Owns(t.Repo) {
			return false, false, &Error{Code: codeDenied, Message: "repository " + t.Repo + " is a mirror's cache: pull-only"}
		}
		return false, false, nil
	}
	repo, anonymous, ok := s.mirror.Route(t.Repo, strings.Clone(c.Query("ns")))
	if !ok {
		return false, false, nil
	}
	t.Repo = repo
	c.Locals(targetKey, *t)
	pull := t.Kind == kindManifest || t.Kind == kindBlob || t.Kind == kindReferrers
	return pull, anonymous, nil
}

// fillFromMirror brings what a pull of a mirror's repository asks for into
// the store, or streams a blob while it arrives. handled reports that the
// response is written.
func (s *Server) fillFromMirror(c *fiber.Ctx, t target) (handled bool, err error) {
	switch t.Kind {
	case kindManifest:
		ref, err := store.ParseReference(t.Ref)
		if err != nil {
			return false, err
		}
		outcome, err := s.mirror.Manifest(c.Context(), t.Repo, ref)
		c.Locals(cacheKey, outcome)
		return false, err
	case kindBlob:
		d, err := store.ParseDigest(t.Ref)
		if err != nil {
			return false, err
		}
		r, size, outcome, err := s.mirror.Blob(c.Context(), t.Repo, d)
		c.Locals(cacheKey, outcome)
		if err != nil || r == nil {
			return false, err
		}
		if c.Method() == fiber.MethodHead || c.Get(fiber.HeaderRange) != "" {
			// Wait for the fill; the store then answers as usual.
			_, err := io.Copy(io.Discard, r)
			r.Close()
			return false, err
		}
		blobHeaders(c, store.BlobInfo{Digest: d, Size: size})
		c.Context().SetBodyStream(r, int(size))
		return true, nil
	case kindReferrers:
		d, err := store.ParseDigest(t.Ref)
		if err != nil {
			return false, err
		}
		outcome, err := s.mirror.Referrers(c.Context(), t.Repo, d)
		c.Locals(cacheKey, outcome)
		return false, err
	}
	return false, nil
}
