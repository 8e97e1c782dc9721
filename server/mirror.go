package server

import (
	"bufio"
	"context"
	"io"
	"strconv"
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
		return s.serveFilling(c, d, r, size)
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

// serveFilling answers a pull of blob d while its fill runs, from r, a
// reader following the fill from its first byte. A HEAD answers from the
// size the upstream announced, and a Range is cut out of the growing file
// as soon as it covers the range, neither waiting for the rest of the
// blob. Only when the upstream sent no size do they wait for the fill;
// the store then answers as usual (handled is false).
func (s *Server) serveFilling(c *fiber.Ctx, d store.Digest, r io.ReadCloser, size int64) (handled bool, err error) {
	head, rng := c.Method() == fiber.MethodHead, c.Get(fiber.HeaderRange)
	if size < 0 && (head || rng != "") {
		_, err := io.Copy(io.Discard, r)
		r.Close()
		return false, err
	}
	blobHeaders(c, store.BlobInfo{Digest: d, Size: size})
	switch {
	case head:
		r.Close()
		c.Response().Header.SetContentLength(int(size))
		c.Response().SkipBody = true
		return true, nil
	case rng == "":
		c.Context().SetBodyStream(sendable(c, r), int(size))
		return true, nil
	}
	start, end, partial, err := parseRange(rng, size)
	if err != nil {
		r.Close()
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
		return false, err
	}
	if !partial {
		c.Context().SetBodyStream(sendable(c, r), int(size))
		return true, nil
	}
	// The bytes before the range are read from the growing file, which
	// waits until they have arrived; the range then follows the fill.
	if _, err := io.CopyN(io.Discard, r, start); err != nil {
		r.Close()
		return false, err
	}
	n := end - start + 1
	c.Status(fiber.StatusPartialContent)
	c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
	c.Context().SetBodyStream(readCloser{io.LimitReader(r, n), r}, int(n))
	return true, nil
}

// fileSender is a reader of a growing blob that can hand its file to a
// connection (store's fill reader, SendTo).
type fileSender interface {
	io.ReadCloser
	io.WriterTo
	SendTo(dst io.ReaderFrom) (int64, error)
}

// sendable returns r as the body of a response on c: on a plain TCP
// connection, one that passes the growing file to the connection, which
// sends it with sendfile(2) from the page cache; otherwise (TLS, tests
// through app.Test) r itself, copied through a buffer.
func sendable(c *fiber.Ctx, r io.ReadCloser) io.ReadCloser {
	fs, ok := r.(fileSender)
	if _, plain := c.Context().Conn().(*trackedConn); !ok || !plain {
		return r
	}
	return sendBody{fs}
}

// sendBody is the response body of a fill on a plain TCP connection.
// fasthttp copies a body stream into its *bufio.Writer over the
// connection; an empty buffer passes ReadFrom through to the connection
// (trackedConn.ReadFrom), which sends a limited file with sendfile.
type sendBody struct{ fileSender }

func (b sendBody) WriteTo(w io.Writer) (int64, error) {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		return b.fileSender.WriteTo(w)
	}
	// fasthttp flushes the headers before a large body; small ones may
	// still be buffered.
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return b.SendTo(bw)
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
