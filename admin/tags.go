package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/store"
)

// repoListCommand lists every repository, one name a line, in lexical
// order: what GET /v2/_catalog shows an admin.
var repoListCommand = Command{
	Name:  "repo list",
	Usage: "",
	Run:   runRepoList,
}

// tagListCommand lists the tags of a repository, one a line, in lexical
// order: what GET /v2/<name>/tags/list shows.
var tagListCommand = Command{
	Name:  "tag list",
	Usage: "REPO",
	Run:   runTagList,
}

// tagDelCommand deletes one tag; the manifest it pointed at stays until gc
// finds nothing else keeps it, as with DELETE /v2/<name>/manifests/<tag>.
var tagDelCommand = Command{
	Name:  "tag del",
	Usage: "REPO:TAG",
	Run:   runTagDel,
}

func runRepoList(_ context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	repos, _, err := env.Store.Repositories("", 0, nil)
	if err != nil {
		return fmt.Errorf("list repositories: %w", err)
	}
	return writeLines(stdio, repos)
}

func runTagList(_ context.Context, env *Env, args Args, stdio Stdio) error {
	repo, err := oneWord(args)
	if err != nil {
		return err
	}
	if err := store.ValidateRepository(repo); err != nil {
		return err
	}
	tags, _, err := env.Store.Tags(repo, "", 0)
	if errors.Is(err, store.ErrNameUnknown) {
		return fmt.Errorf("no repository %s", repo)
	}
	if err != nil {
		return fmt.Errorf("list the tags of %s: %w", repo, err)
	}
	return writeLines(stdio, tags)
}

func runTagDel(_ context.Context, env *Env, args Args, stdio Stdio) error {
	word, err := oneWord(args)
	if err != nil {
		return err
	}
	repo, tag, ok := strings.Cut(word, ":")
	if !ok {
		return fmt.Errorf("%q is not REPO:TAG", word)
	}
	if err := store.ValidateRepository(repo); err != nil {
		return err
	}
	if err := store.ValidateTag(tag); err != nil {
		return err
	}
	d, err := env.Store.DeleteTag(repo, tag)
	if errors.Is(err, store.ErrManifestUnknown) {
		return fmt.Errorf("no tag %s:%s", repo, tag)
	}
	if err != nil {
		return fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	fmt.Fprintf(stdio.Out, "deleted tag %s:%s (it pointed at %s)\n", repo, tag, d)
	fmt.Fprintln(stdio.Out, "berth gc frees the image once nothing else tags or lists it and it is older than gc's grace period")
	return nil
}

func writeLines(stdio Stdio, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := fmt.Fprint(stdio.Out, b.String())
	return err
}
