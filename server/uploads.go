package server

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount, a monolithic upload with ?digest=, or a new session.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
func (s *Server) startUpload(c *fiber.Ctx, t target) error {
	if mount := c.Query("mount"); mount != "" {
		if done, err := s.mountBlob(c, t, mount, c.Query("from")); done || err != nil {
			return err
		}
	} else if ds := c.Query("digest"); ds != "" {
		d, err := store.ParseDigest(ds)
		if err != nil {
			return err
		}
		// A quota refuses a push of known size before its first byte.
		if err := s.store.CheckQuota(t.Repo, d, requestLength(c)); err != nil {
			return err
		}
		info, err := s.store.PutBlob(t.Repo, d, requestLength(c), s.body(c))
		if err != nil {
			return err
		}
		return blobCreated(c, t.Repo, info.Digest)
	}
	u, err := s.store.StartUpload(t.Repo, uploadOwner(c), s.maxUploads)
	if err != nil {
		return err
	}
	uploadHeaders(c, u)
	return c.Status(fiber.StatusAccepted).Send(nil)
}

// uploadOwner is whom a new session counts against for the per-user cap:
// the signed-in account, else the client's address, as "addr:<ip>" (no
// account name contains ':'), so --auth none and anonymous pushes are
// capped too.
func uploadOwner(c *fiber.Ctx) string {
	if who, ok := c.Locals(callerKey).(*caller); ok && who.account != "" {
		return who.account
	}
	return "addr:" + c.IP()
}

// mountBlob links an existing blob into t.Repo. done is false when the blob
// is not there to mount (or not from a repository the caller may pull) and
// an ordinary upload session should start instead, as the spec asks; any
// other failure is an error, not a silent new upload.
func (s *Server) mountBlob(c *fiber.Ctx, t target, mount, from string) (done bool, err error) {
	d, err := store.ParseDigest(mount)
	if err != nil {
		return false, err
	}
	readable, err := s.pullFilter(c)
	if err != nil {
		return false, err
	}
	var info store.BlobInfo
	switch {
	case from == "":
		info, err = s.store.MountAnyBlob(t.Repo, d, readable)
	case store.ValidateRepository(from) != nil || !readable(from):
		return false, nil
	default:
		info, err = s.store.MountBlob(t.Repo, from, d)
	}
	if errors.Is(err, store.ErrBlobUnknown) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mount blob %s into %s: %w", d, t.Repo, err)
	}
	return true, blobCreated(c, t.Repo, info.Digest)
}

// uploadStatus reports how much of a session has arrived, for resuming.
func (s *Server) uploadStatus(c *fiber.Ctx, t target) error {
	u, err := s.store.UploadStatus(t.Repo, t.Ref)
	if err != nil {
		return err
	}
	uploadHeaders(c, u)
	return c.Status(fiber.StatusNoContent).Send(nil)
}

// patchUpload appends one chunk, or the whole body of a streamed upload
// (chunked transfer encoding, no Content-Range).
func (s *Server) patchUpload(c *fiber.Ctx, t target) error {
	start, err := chunkStart(c)
	if err != nil {
		return err
	}
	if err := s.store.CheckUploadQuota(t.Repo, t.Ref, requestLength(c)); err != nil {
		return err
	}
	u, err := s.store.AppendUpload(t.Repo, t.Ref, start, s.body(c))
	if err != nil {
		s.offsetHeaders(c, t)
		return err
	}
	uploadHeaders(c, u)
	return c.Status(fiber.StatusAccepted).Send(nil)
}

// putUpload closes a session with an optional last chunk and the digest.
func (s *Server) putUpload(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(c.Query("digest"))
	if err != nil {
		return err
	}
	start, err := chunkStart(c)
	if err != nil {
		return err
	}
	if err := s.store.CheckUploadQuota(t.Repo, t.Ref, requestLength(c)); err != nil {
		return err
	}
	info, err := s.store.CommitUpload(t.Repo, t.Ref, start, s.body(c), d)
	if err != nil {
		s.offsetHeaders(c, t)
		return err
	}
	return blobCreated(c, t.Repo, info.Digest)
}

func (s *Server) cancelUpload(c *fiber.Ctx, t target) error {
	if err := s.store.CancelUpload(t.Repo, t.Ref); err != nil {
		return err
	}
	return c.Status(fiber.StatusNoContent).Send(nil)
}

// chunkStart returns where the client says the chunk starts, -1 when it
// sent no Content-Range. A range whose length disagrees with Content-Length
// is refused before any byte is stored.
func chunkStart(c *fiber.Ctx) (int64, error) {
	cr := c.Get(fiber.HeaderContentRange)
	if cr == "" {
		return -1, nil
	}
	start, end, err := parseContentRange(cr)
	if err != nil {
		return 0, err
	}
	if n := requestLength(c); n >= 0 && n != end-start+1 {
		return 0, store.ErrRangeInvalid
	}
	return start, nil
}

// offsetHeaders tells a client whose chunk did not fit where the session
// really is, so it can resume without another request.
func (s *Server) offsetHeaders(c *fiber.Ctx, t target) {
	if u, serr := s.store.UploadStatus(t.Repo, t.Ref); serr == nil {
		uploadHeaders(c, u)
	}
}

func uploadHeaders(c *fiber.Ctx, u store.Upload) {
	c.Set(fiber.HeaderLocation, "/v2/"+u.Repo+"/blobs/uploads/"+u.ID)
	c.Set("Docker-Upload-UUID", u.ID)
	// Range is inclusive; an empty session reports 0-0 as registry:2 does.
	last := u.Offset - 1
	if last < 0 {
		last = 0
	}
	c.Set(fiber.HeaderRange, "0-"+strconv.FormatInt(last, 10))
	c.Set(fiber.HeaderContentLength, "0")
}

func blobCreated(c *fiber.Ctx, repo string, d store.Digest) error {
	c.Set(fiber.HeaderLocation, "/v2/"+repo+"/blobs/"+string(d))
	c.Set("Docker-Content-Digest", string(d))
	return c.Status(fiber.StatusCreated).Send(nil)
}

// requestLength is the declared Content-Length, or -1 when the body is
// chunked or the length unknown.
func requestLength(c *fiber.Ctx) int64 {
	n := c.Request().Header.ContentLength()
	if n < 0 {
		return -1
	}
	return int64(n)
}
