package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

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

// Bounds of one referrers page. Each referrer's annotations are copied
// into the answer, so a page is bounded in bytes as well as in count; the
// rest is reached through the Link header, as the spec allows.
const (
	maxReferrersPage      = 100
	maxReferrersPageBytes = 4 << 20
)

// listReferrers answers the referrers API, filtered by artifactType, in
// pages with a Link to the next. The page is chosen in one read
// transaction; the answer is then written one descriptor at a time, each
// read in its own short transaction, so neither a slow client nor large
// annotations hold a transaction or the whole answer in memory.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
func (s *Server) listReferrers(c *fiber.Ctx, t target) error {
	d, err := store.ParseDigest(t.Ref)
	if err != nil {
		return err
	}
	var after store.Digest
	if last := c.Query("last"); last != "" {
		if after, err = store.ParseDigest(last); err != nil {
			return err
		}
	}
	artifactType := strings.Clone(c.Query("artifactType"))
	page, err := s.store.Referrers(t.Repo, d, artifactType, after, maxReferrersPage, maxReferrersPageBytes)
	if err != nil {
		return err
	}
	if artifactType != "" {
		c.Set("OCI-Filters-Applied", "artifactType")
	}
	if page.More {
		q := url.Values{"last": {string(page.Digests[len(page.Digests)-1])}}
		if artifactType != "" {
			q.Set("artifactType", artifactType)
		}
		c.Set(fiber.HeaderLink, "</v2/"+t.Repo+"/referrers/"+string(d)+"?"+q.Encode()+`>; rel="next"`)
	}
	c.Set(fiber.HeaderContentType, store.MediaTypeOCIIndex)
	repo := t.Repo
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		s.writeReferrers(w, repo, page.Digests)
	})
	return nil
}

// writeReferrers writes the image index of the referrers refs of repo. A
// referrer deleted since the page was chosen is left out. A failure midway
// can only cut the answer short: the status is already sent.
func (s *Server) writeReferrers(w *bufio.Writer, repo string, refs []store.Digest) {
	w.WriteString(`{"schemaVersion":2,"mediaType":"` + store.MediaTypeOCIIndex + `","manifests":[`)
	enc := json.NewEncoder(w)
	first := true
	for _, ref := range refs {
		desc, err := s.store.Referrer(repo, ref)
		if errors.Is(err, store.ErrManifestUnknown) {
			continue
		}
		if err != nil {
			s.log.Error("referrers: read referrer", "repo", repo, "digest", ref, "err", err)
			return
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		if err := enc.Encode(desc); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return // the client went away
		}
	}
	w.WriteString("]}")
	w.Flush()
}
