package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/store"
)

// RepoDel deletes a repository: its tags, manifests and blob links at
// once. The blobs stay until gc finds no repository links them.
type RepoDel struct {
	Name string `arg:"NAME" json:"name"`
}

// RepoDeleted is the result of repo del.
type RepoDeleted struct {
	Name string `json:"name"`
	store.RepoDeletion
}

var RepoDelOp = register(&Op[RepoDel, RepoDeleted]{
	Name: "repo del",
	Do: func(_ context.Context, env *Env, _ *Task, req RepoDel) (*RepoDeleted, error) {
		if err := store.ValidateRepository(req.Name); err != nil {
			return nil, err
		}
		del, err := env.Store.DeleteRepository(req.Name)
		if errors.Is(err, store.ErrNameUnknown) {
			return nil, fmt.Errorf("no repository %s", req.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("delete repository %s: %w", req.Name, err)
		}
		return &RepoDeleted{Name: req.Name, RepoDeletion: del}, nil
	},
	Render: func(w Output, res *RepoDeleted) error {
		fmt.Fprintf(w.Out, "deleted repository %s: %s, %s, %s\n", res.Name,
			plural(res.Tags, "tag"), plural(res.Manifests, "manifest"), plural(res.Links, "blob link"))
		_, err := fmt.Fprintln(w.Out, "berth gc frees the blobs no other repository links, once they are older than its grace period")
		return err
	},
})
