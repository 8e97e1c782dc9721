package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/store"
)

// repoDelCommand deletes a repository: its tags, manifests and blob links
// at once. The blobs stay until gc finds no repository links them.
var repoDelCommand = Command{
	Name:  "repo del",
	Usage: "NAME",
	Run:   runRepoDel,
}

func runRepoDel(_ context.Context, env *Env, args Args, stdio Stdio) error {
	name, err := oneWord(args)
	if err != nil {
		return err
	}
	if err := store.ValidateRepository(name); err != nil {
		return err
	}
	del, err := env.Store.DeleteRepository(name)
	if errors.Is(err, store.ErrNameUnknown) {
		return fmt.Errorf("no repository %s", name)
	}
	if err != nil {
		return fmt.Errorf("delete repository %s: %w", name, err)
	}
	fmt.Fprintf(stdio.Out, "deleted repository %s: %s, %s, %s\n", name,
		plural(del.Tags, "tag"), plural(del.Manifests, "manifest"), plural(del.Links, "blob link"))
	fmt.Fprintln(stdio.Out, "berth gc frees the blobs no other repository links, once they are older than its grace period")
	return nil
}
