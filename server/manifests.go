package server

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// getManifest serves a manifest's stored bytes exactly.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
func (s *Server) getManifest(c *fiber.Ctx, t target) error {
	m, err := s.lookupManifest(t)
	if err != nil {
		return err
	}
	// A GET by tag or by digest is a pull; a HEAD (containerd's tag
	// resolution) is not.
	if s.pullTimes {
		s.store.RecordPull(t.Repo, m.Digest)
	}
	if s.onPull != nil && s.store.WantsAny(store.ActionPull) {
		ev := store.Event{Time: time.Now(), Action: store.ActionPull, Repo: t.Repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Origin: s.origin(c)}
		if ref, _ := store.ParseReference(t.Ref); ref.Tag != "" {
			ev.Tag = ref.Tag
		}
		s.onPull(ev)
	}
	manifestHeaders(c, m)
	return c.Send(m.Body)
}

func (s *Server) headManifest(c *fiber.Ctx, t target) error {
	m, err := s.lookupManifest(t)
	if err != nil {
		return err
	}
	manifestHeaders(c, m)
	c.Response().Header.SetContentLength(len(m.Body))
	c.Response().SkipBody = true
	return nil
}

func (s *Server) lookupManifest(t target) (store.StoredManifest, error) {
	ref, err := store.ParseReference(t.Ref)
	if err != nil {
		return store.StoredManifest{}, err
	}
	return s.store.PulledManifest(t.Repo, ref)
}

// origin is who sent the request, for the events the change records. The
// strings are copies: they outlive the request in the outbox.
func (s *Server) origin(c *fiber.Ctx) store.Origin {
	o := store.Origin{
		Addr:      c.IP(),
		Host:      strings.Clone(string(c.Request().Host())),
		Method:    strings.Clone(c.Method()),
		UserAgent: strings.Clone(c.Get(fiber.HeaderUserAgent)),
		BaseURL:   s.externalURL(c),
	}
	if id, ok := c.Locals("requestid").(string); ok {
		o.RequestID = strings.Clone(id)
	}
	if who, ok := c.Locals(callerKey).(*caller); ok {
		o.Actor = who.account
	}
	return o
}

func manifestHeaders(c *fiber.Ctx, m store.StoredManifest) {
	c.Set(fiber.HeaderContentType, m.MediaType)
	c.Set("Docker-Content-Digest", string(m.Digest))
	// The header copies the value: quoted in a buffer on the stack, the
	// ETag costs no allocation.
	var etag [2 + 7 + 128 + 1]byte // quotes, "sha512:", 128 hex digits
	c.Response().Header.SetBytesV(fiber.HeaderETag, append(append(append(etag[:0], '"'), m.Digest...), '"'))
}

// putManifest stores a manifest under a tag or digest, plus any ?tag=
// parameters. The body is read through its own cap, because fiber's
// BodyLimit does not apply to streamed bodies.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
func (s *Server) putManifest(c *fiber.Ctx, t target) error {
	ref, err := store.ParseReference(t.Ref)
	if err != nil {
		return err
	}
	var extraTags []string
	for _, tag := range c.Context().QueryArgs().PeekMulti("tag") {
		tag := string(tag)
		if err := store.ValidateTag(tag); err != nil {
			return err
		}
		extraTags = append(extraTags, tag)
	}
	if n := requestLength(c); n > store.MaxManifestSize {
		return fmt.Errorf("%w: %d bytes", store.ErrManifestTooLarge, n)
	}
	body, err := io.ReadAll(io.LimitReader(s.body(c), store.MaxManifestSize+1))
	if err != nil {
		return err
	}
	if len(body) > store.MaxManifestSize {
		return fmt.Errorf("%w: over %d bytes", store.ErrManifestTooLarge, store.MaxManifestSize)
	}
	m, parsed, err := s.store.PutManifestBy(s.origin(c), t.Repo, ref, extraTags, c.Get(fiber.HeaderContentType), body)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderLocation, "/v2/"+t.Repo+"/manifests/"+string(m.Digest))
	c.Set("Docker-Content-Digest", string(m.Digest))
	if parsed.Subject != nil {
		c.Set("OCI-Subject", string(parsed.Subject.Digest))
	}
	if len(extraTags) > 0 {
		c.Set("OCI-Tag", strings.Join(extraTags, ", "))
	}
	c.Set(fiber.HeaderContentLength, strconv.Itoa(0))
	return c.Status(fiber.StatusCreated).Send(nil)
}

// deleteManifest deletes a tag, or a manifest by digest with its tags.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-manifests
func (s *Server) deleteManifest(c *fiber.Ctx, t target) error {
	ref, err := store.ParseReference(t.Ref)
	if err != nil {
		return err
	}
	if err := s.store.DeleteManifestBy(s.origin(c), t.Repo, ref); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).Send(nil)
}
