package ui

import (
	"context"
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// deletion is what a delete form names: a tag, a manifest (digest) or,
// with neither, the whole repository.
type deletion struct {
	Repo   string
	Tag    string
	Digest store.Digest
	// Exclusive is what GC frees after a repository's deletion.
	Exclusive int64
}

// What says in words what goes.
func (d deletion) What() string {
	switch {
	case d.Tag != "":
		return "the tag " + d.Repo + ":" + d.Tag
	case d.Digest != "":
		return "the manifest " + d.Repo + "@" + string(d.Digest) + " and every tag pointing at it"
	}
	return "the repository " + d.Repo + " with all its tags and manifests"
}

// parseDeletion reads a delete request and checks the viewer holds the
// delete right on the repository, as a manifest DELETE on the API needs.
func (u *UI) parseDeletion(c *fiber.Ctx, v *viewer, get func(string, ...string) string) (deletion, error) {
	d := deletion{Repo: get("name"), Tag: get("tag")}
	if err := u.mayPull(v, d.Repo); err != nil {
		return d, err
	}
	if s := get("digest"); s != "" {
		dg, err := store.ParseDigest(s)
		if err != nil {
			return d, errStatus(fiber.StatusBadRequest, "not a digest")
		}
		d.Digest = dg
	}
	if d.Tag != "" && store.ValidateTag(d.Tag) != nil {
		return d, errStatus(fiber.StatusBadRequest, "not a tag")
	}
	ok, err := u.may(v, d.Repo, auth.ActionDelete)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, errStatus(fiber.StatusForbidden, "you may not delete in this repository")
	}
	return d, nil
}

// deleteConfirm shows what a delete removes and asks to confirm.
func (u *UI) deleteConfirm(c *fiber.Ctx, v *viewer) error {
	d, err := u.parseDeletion(c, v, c.Query)
	if err != nil {
		return err
	}
	if d.Tag == "" && d.Digest == "" {
		us, err := u.st.Usage(d.Repo)
		if errors.Is(err, store.ErrNameUnknown) {
			return errStatus(fiber.StatusNotFound, "no such repository")
		}
		if err != nil {
			return err
		}
		d.Exclusive = us[0].Exclusive
	}
	return u.render(c, v, "delete", "Delete", d)
}

// delete performs a confirmed delete: a tag or manifest with the store's
// DeleteManifest (as DELETE /v2/.../manifests/REF), a repository with the
// same operation as `berth repo del`.
func (u *UI) delete(c *fiber.Ctx, v *viewer) error {
	d, err := u.parseDeletion(c, v, c.FormValue)
	if err != nil {
		return err
	}
	switch {
	case d.Tag != "" || d.Digest != "":
		err = u.st.DeleteManifest(d.Repo, store.Reference{Tag: d.Tag, Digest: d.Digest})
		if errors.Is(err, store.ErrManifestUnknown) {
			return errStatus(fiber.StatusNotFound, "no such tag or manifest")
		}
		if errors.Is(err, store.ErrManifestInUse) {
			return errStatus(fiber.StatusConflict, "an index of this repository still lists this manifest: delete the index first")
		}
	default:
		_, err = admin.RepoDelOp.Run(context.Background(), u.opts.Admin, admin.RepoDel{Name: d.Repo})
		if err != nil {
			return errStatus(fiber.StatusNotFound, err.Error())
		}
		return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
	}
	if err != nil {
		return err
	}
	return c.Redirect(Prefix+"/repo?name="+url.QueryEscape(d.Repo), fiber.StatusSeeOther)
}
