package server

import (
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// maxPage bounds one page of tags or repositories, so a single request
// cannot make the server build an unbounded response.
const maxPage = 10000

// listTags answers GET /v2/<name>/tags/list with n/last pagination.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
func (s *Server) listTags(c *fiber.Ctx, t target) error {
	n, err := pageSize(c)
	if err != nil {
		return err
	}
	tags, more, err := s.store.Tags(t.Repo, c.Query("last"), n)
	if err != nil {
		return err
	}
	if n == 0 {
		tags, more = []string{}, false
	}
	if more {
		setNextLink(c, "/v2/"+t.Repo+"/tags/list", n, tags[len(tags)-1])
	}
	return c.JSON(fiber.Map{"name": t.Repo, "tags": tags})
}

// catalog answers GET /v2/_catalog with n/last pagination, listing only
// the repositories the caller may pull.
func (s *Server) catalog(c *fiber.Ctx, _ target) error {
	n, err := pageSize(c)
	if err != nil {
		return err
	}
	visible, err := s.pullFilter(c)
	if err != nil {
		return err
	}
	repos, more := []string{}, false
	if n > 0 {
		if repos, more, err = s.store.Repositories(c.Query("last"), n, visible); err != nil {
			return err
		}
	}
	if more {
		setNextLink(c, "/v2/_catalog", n, repos[len(repos)-1])
	}
	return c.JSON(fiber.Map{"repositories": repos})
}

// pageSize reads n: absent means maxPage, larger values are capped, 0 asks
// for an empty page, and anything but a non-negative integer is an error.
func pageSize(c *fiber.Ctx) (int, error) {
	q := c.Query("n")
	if q == "" {
		return maxPage, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 0 {
		return 0, newError(codePaginationInvalid, map[string]string{"n": q})
	}
	return min(n, maxPage), nil
}

func setNextLink(c *fiber.Ctx, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	c.Set(fiber.HeaderLink, "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

// listReferrers answers the referrers API, filtered by artifactType.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
func (s *Server) listReferrers(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(t.Ref)
	if err != nil {
		return err
	}
	artifactType := c.Query("artifactType")
	refs, err := s.store.Referrers(t.Repo, d, artifactType)
	if err != nil {
		return err
	}
	descs := make([]store.Descriptor, 0, len(refs))
	for _, m := range refs {
		descs = append(descs, store.Descriptor{
			MediaType: m.MediaType, Digest: m.Digest, Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	if artifactType != "" {
		c.Set("OCI-Filters-Applied", "artifactType")
	}
	c.Set(fiber.HeaderContentType, store.MediaTypeOCIIndex)
	return c.JSON(fiber.Map{
		"schemaVersion": 2,
		"mediaType":     store.MediaTypeOCIIndex,
		"manifests":     descs,
	}, store.MediaTypeOCIIndex)
}
