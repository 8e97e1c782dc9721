package ui

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// pullFilter is what the viewer may pull: the same check as _catalog.
func (u *UI) pullFilter(v *viewer) (func(string) bool, error) {
	if v.Everything {
		return func(string) bool { return true }, nil
	}
	if v.Directory {
		return u.auth.PullFilterDirectory(v.User.Name, v.groups)
	}
	return u.auth.PullFilter(v.User.Name)
}

// may reports whether the viewer may take action on repo, by the rules a
// /v2 request with Basic credentials is checked against.
func (u *UI) may(v *viewer, repo, action string) (bool, error) {
	if v.Everything {
		return true, nil
	}
	scopes := []auth.Scope{{Type: auth.TypeRepository, Name: repo, Actions: []string{action}}}
	var access []auth.Access
	var err error
	if v.Directory {
		access, err = u.auth.AuthorizeDirectory(v.User.Name, v.groups, scopes)
	} else {
		access, err = u.auth.Authorize(v.User, scopes)
	}
	if err != nil {
		return false, err
	}
	return auth.Covers(access, auth.TypeRepository, repo, action), nil
}

// mayPull answers 404 for a repository the viewer may not pull, the same
// as for one that does not exist, so a page tells nothing of what is
// hidden.
func (u *UI) mayPull(v *viewer, repo string) error {
	if store.ValidateRepository(repo) != nil {
		return errStatus(fiber.StatusNotFound, "no such repository")
	}
	ok, err := u.may(v, repo, auth.ActionPull)
	if err != nil {
		return err
	}
	if !ok {
		return errStatus(fiber.StatusNotFound, "no such repository")
	}
	return nil
}

// repoRow is one line of the repository list.
type repoRow struct {
	Name      string
	Tags      int
	Exclusive int64
	Shared    int64
	LastPush  time.Time
}

// Total is the repository's size as du counts it: what it links, shared
// or not, and its manifests.
func (r repoRow) Total() int64 { return r.Exclusive + r.Shared }

// repositories lists the repositories the viewer may pull, filtered by
// the search box (a substring of the name), pageSize at a time: in name
// order by default, where each page reads its own numbers from the store,
// or by size or last push (sort=size, sort=pushed), which order the kept
// summaries of every repository (summaries.go) and page by number.
func (u *UI) repositories(c *fiber.Ctx, v *viewer) error {
	visible, err := u.pullFilter(v)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(c.Query("q"))
	match := func(name string) bool { return strings.Contains(name, q) && visible(name) }
	data := map[string]any{"Query": q, "Sort": "name"}
	switch sort := c.Query("sort"); sort {
	case "", "name":
		err = u.repositoriesByName(c, match, data)
	case "size", "pushed":
		data["Sort"] = sort
		err = u.repositoriesSorted(c, sort, match, data)
	default:
		return errStatus(fiber.StatusBadRequest, "sort by name, size or pushed")
	}
	if err != nil {
		return err
	}
	return u.render(c, v, "repositories", "Repositories", data)
}

func (u *UI) repositoriesByName(c *fiber.Ctx, match func(string) bool, data map[string]any) error {
	names, more, err := u.st.Repositories(c.Query("after"), pageSize, match)
	if err != nil {
		return err
	}
	rows := make([]repoRow, 0, len(names))
	usage := map[string]store.RepoUsage{}
	if len(names) > 0 {
		us, err := u.st.Usage(names...)
		if err != nil && !errors.Is(err, store.ErrNameUnknown) {
			return err
		}
		for _, x := range us {
			usage[x.Repo] = x
		}
	}
	for _, n := range names {
		tags, err := u.st.TagCount(n)
		if err != nil && !errors.Is(err, store.ErrNameUnknown) {
			return err
		}
		last, err := u.st.LastPush(n)
		if err != nil && !errors.Is(err, store.ErrNameUnknown) {
			return err
		}
		rows = append(rows, repoRow{Name: n, Tags: tags, Exclusive: usage[n].Exclusive, Shared: usage[n].Shared, LastPush: last})
	}
	data["Rows"] = rows
	if more && len(names) > 0 {
		data["NextAfter"] = names[len(names)-1]
	}
	return nil
}

func (u *UI) repositoriesSorted(c *fiber.Ctx, sort string, match func(string) bool, data map[string]any) error {
	pg, err := strconv.Atoi(c.Query("page", "1"))
	if err != nil || pg < 1 {
		return errStatus(fiber.StatusBadRequest, "page must be a number from 1")
	}
	snap, err := u.summaries.get()
	if err != nil {
		return err
	}
	all := snap.bySize
	if sort == "pushed" {
		all = snap.byPush
	}
	rows := make([]repoRow, 0, pageSize)
	skip, more := (pg-1)*pageSize, false
	for _, r := range all {
		if !match(r.Repo) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(rows) == pageSize {
			more = true
			break
		}
		rows = append(rows, repoRow{Name: r.Repo, Tags: r.Tags, Exclusive: r.Exclusive, Shared: r.Shared, LastPush: r.LastPush})
	}
	data["Rows"], data["AsOf"] = rows, snap.Taken
	if more {
		data["NextPage"] = pg + 1
	}
	if pg > 1 {
		data["PrevPage"] = pg - 1
	}
	return nil
}

// tagRow is one tag of a repository page.
type tagRow struct {
	Tag       string
	Digest    store.Digest
	MediaType string
	Size      int64 // the manifest, its config and layers; for an index, its children's manifests
	Pushed    time.Time
	Pulled    time.Time // the manifest's last pull (by tag or digest); zero: never
	Platforms []string
	Referrers []string // artifact types of what refers to the digest
}

// repository shows the tags of one repository, pageSize at a time.
func (u *UI) repository(c *fiber.Ctx, v *viewer) error {
	repo := c.Query("name")
	if err := u.mayPull(v, repo); err != nil {
		return err
	}
	tags, more, err := u.st.Tags(repo, c.Query("after"), pageSize)
	if errors.Is(err, store.ErrNameUnknown) {
		return errStatus(fiber.StatusNotFound, "no such repository")
	}
	if err != nil {
		return err
	}
	rows := make([]tagRow, 0, len(tags))
	for _, tag := range tags {
		m, err := u.st.Manifest(repo, store.Reference{Tag: tag})
		if errors.Is(err, store.ErrManifestUnknown) {
			continue // deleted since the listing, or broken
		}
		if err != nil {
			return err
		}
		row := tagRow{Tag: tag, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Pushed: m.Created, Pulled: u.st.LastPull(repo, m.Digest)}
		if pm, err := store.ParseManifest(m.MediaType, m.Body); err == nil {
			row.Size += contentSize(pm)
			row.Platforms = platforms(pm)
		}
		refs, err := u.referrers(repo, m.Digest)
		if err != nil {
			return err
		}
		for _, r := range refs {
			row.Referrers = append(row.Referrers, referrerKind(r.ArtifactType))
		}
		rows = append(rows, row)
	}
	next := ""
	if more && len(tags) > 0 {
		next = tags[len(tags)-1]
	}
	canDelete, err := u.may(v, repo, auth.ActionDelete)
	if err != nil {
		return err
	}
	return u.render(c, v, "repository", repo, map[string]any{
		"Repo": repo, "Rows": rows, "Next": next, "CanDelete": canDelete, "Host": c.Hostname(),
	})
}

// referrers returns the descriptors of what refers to d in repo: the first
// pageSize of them, which is all a page shows.
func (u *UI) referrers(repo string, d store.Digest) ([]store.Descriptor, error) {
	pg, err := u.st.Referrers(repo, d, "", "", pageSize, 1<<20)
	if err != nil {
		return nil, err
	}
	out := make([]store.Descriptor, 0, len(pg.Digests))
	for _, r := range pg.Digests {
		desc, err := u.st.Referrer(repo, r)
		if errors.Is(err, store.ErrManifestUnknown) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, desc)
	}
	return out, nil
}

// contentSize is what a manifest's references weigh: config and layers of
// an image, the child manifests of an index.
func contentSize(m *store.Manifest) int64 {
	var n int64
	if m.Config != nil {
		n += m.Config.Size
	}
	for _, l := range m.Layers {
		n += l.Size
	}
	for _, d := range m.Manifests {
		n += d.Size
	}
	return n
}

// platforms lists the platforms of an index's children, os/arch[/variant].
func platforms(m *store.Manifest) []string {
	var out []string
	for _, d := range m.Manifests {
		if p := d.Platform; p != nil {
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				s += "/" + p.Variant
			}
			out = append(out, s)
		}
	}
	return out
}

// referrerKind names a referrer's artifact type for a badge.
func referrerKind(artifactType string) string {
	t := strings.ToLower(artifactType)
	switch {
	case strings.Contains(t, "signature") || strings.Contains(t, "cosign") || strings.Contains(t, "notary"):
		return "signature"
	case strings.Contains(t, "spdx") || strings.Contains(t, "cyclonedx") || strings.Contains(t, "sbom"):
		return "SBOM"
	case strings.Contains(t, "in-toto") || strings.Contains(t, "attestation") || strings.Contains(t, "provenance"):
		return "attestation"
	case t == "":
		return "artifact"
	}
	return artifactType
}
