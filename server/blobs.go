package server

import (
	"io"
	"os"
	"strconv"

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
	f, info, err := s.store.OpenBlob(t.Repo, d)
	if err != nil {
		return err
	}
	blobHeaders(c, info)
	start, end, partial, err := parseRange(c.Get(fiber.HeaderRange), info.Size)
	if err != nil {
		f.Close()
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(info.Size, 10))
		return err
	}
	if !partial {
		// A bare *os.File lets the connection use sendfile; fasthttp closes
		// it when the response is written.
		c.Context().SetBodyStream(f, int(info.Size))
		return nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	n := end - start + 1
	c.Status(fiber.StatusPartialContent)
	c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(info.Size, 10))
	c.Context().SetBodyStream(&sectionFile{Reader: io.LimitReader(f, n), f: f}, int(n))
	return nil
}

// sectionFile is a range of an open blob file that closes the file when the
// response is done with it.
type sectionFile struct {
	io.Reader
	f *os.File
}

func (r *sectionFile) Close() error { return r.f.Close() }

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
