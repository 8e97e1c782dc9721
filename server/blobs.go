package server

import (
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// getBlob streams a blob, whole or one byte range.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
func (s *Server) getBlob(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(t.Ref)
	if err != nil {
		return err
	}
	info, err := s.store.StatBlob(t.Repo, d)
	if err != nil {
		return err
	}
	if s.redirectBlobs {
		handled, err := s.redirectBlob(c, t.Repo, d)
		if handled || err != nil {
			return err
		}
	}
	start, end, partial, err := parseRange(c.Get(fiber.HeaderRange), info.Size)
	if err != nil {
		blobHeaders(c, info)
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(info.Size, 10))
		return err
	}
	n := int64(-1)
	if partial {
		n = end - start + 1
	}
	// A whole blob on the directory is an *os.File, which lets the
	// connection use sendfile; fasthttp closes the reader when the response
	// is written.
	r, info, err := s.store.OpenBlob(c.UserContext(), t.Repo, d, start, n)
	if err != nil {
		return err
	}
	blobHeaders(c, info)
	if !partial {
		c.Context().SetBodyStream(r, int(info.Size))
		return nil
	}
	c.Status(fiber.StatusPartialContent)
	c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(info.Size, 10))
	c.Context().SetBodyStream(r, int(n))
	return nil
}

// blobURLTTL is how long a presigned blob URL stays valid: long enough for a
// client to start a large layer's download after the redirect (S3 checks
// the expiry when the GET arrives, not while it streams), short enough that
// a URL copied from a log is soon useless.
const blobURLTTL = 15 * time.Minute

// redirectBlob answers 307 with a URL of the blob's bytes when the blob
// store has one (S3: presigned, on --s3-public-endpoint when set); the
// client sends its Range header there. handled is false when the store
// cannot hand out URLs: the caller streams.
func (s *Server) redirectBlob(c *fiber.Ctx, repo string, d store.Digest) (handled bool, err error) {
	url, info, err := s.store.BlobURL(c.UserContext(), repo, d, blobURLTTL)
	if errors.Is(err, store.ErrNotSupported) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.Set("Docker-Content-Digest", string(info.Digest))
	// Not cached: the URL expires, the content does not.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderLocation, url)
	return true, c.SendStatus(fiber.StatusTemporaryRedirect)
}

func (s *Server) headBlob(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(t.Ref)
	if err != nil {
		return err
	}
	info, err := s.store.StatBlob(t.Repo, d)
	if err != nil {
		return err
	}
	blobHeaders(c, info)
	c.Response().Header.SetContentLength(int(info.Size))
	c.Response().SkipBody = true
	return nil
}

func blobHeaders(c *fiber.Ctx, info store.BlobInfo) {
	c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	c.Set("Docker-Content-Digest", string(info.Digest))
	c.Set(fiber.HeaderETag, `"`+string(info.Digest)+`"`)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	// Content-addressed: the bytes behind a digest never change.
	c.Set(fiber.HeaderCacheControl, "max-age=31536000")
}

// deleteBlob unlinks a blob from the repository.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-blobs
func (s *Server) deleteBlob(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(t.Ref)
	if err != nil {
		return err
	}
	if err := s.store.DeleteBlob(t.Repo, d); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).Send(nil)
}
