package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// RepoList lists every repository, one name a line, in lexical order: what
// GET /v2/_catalog shows an admin.
type RepoList struct{}

// TagList lists the tags of a repository, one a line, in lexical order:
// what GET /v2/<name>/tags/list shows.
type TagList struct {
	Repo string `arg:"REPO" json:"repo"`
	Long bool   `flag:"long" usage:"also print each tag's digest, push time and last pull" json:"long,omitempty"`
}

// TagListing is the result of tag list: the names, and with --long each
// tag's times.
type TagListing struct {
	Names []string        `json:"names"`
	Tags  []store.TagInfo `json:"tags,omitempty"`
}

// TagDel deletes one tag; the manifest it pointed at stays until gc finds
// nothing else keeps it, as with DELETE /v2/<name>/manifests/<tag>.
type TagDel struct {
	Ref string `arg:"REPO:TAG" json:"ref"`
}

// Lines is a list printed one a line.
type Lines struct {
	Names []string `json:"names"`
}

// TagDeleted is the result of tag del.
type TagDeleted struct {
	Repo   string       `json:"repo"`
	Tag    string       `json:"tag"`
	Digest store.Digest `json:"digest"`
}

var RepoListOp = register(&Op[RepoList, Lines]{
	Name: "repo list",
	Do: func(_ context.Context, env *Env, _ *Task, _ RepoList) (*Lines, error) {
		repos, _, err := env.Store.Repositories("", 0, nil)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		return &Lines{Names: repos}, nil
	},
	Render: renderNames,
})

var TagListOp = register(&Op[TagList, TagListing]{
	Name: "tag list",
	Do: func(_ context.Context, env *Env, _ *Task, req TagList) (*TagListing, error) {
		if err := store.ValidateRepository(req.Repo); err != nil {
			return nil, err
		}
		if req.Long {
			infos, err := env.Store.TagInfos(req.Repo)
			if errors.Is(err, store.ErrNameUnknown) {
				return nil, fmt.Errorf("no repository %s", req.Repo)
			}
			if err != nil {
				return nil, fmt.Errorf("list the tags of %s: %w", req.Repo, err)
			}
			return &TagListing{Tags: infos}, nil
		}
		tags, _, err := env.Store.Tags(req.Repo, "", 0)
		if errors.Is(err, store.ErrNameUnknown) {
			return nil, fmt.Errorf("no repository %s", req.Repo)
		}
		if err != nil {
			return nil, fmt.Errorf("list the tags of %s: %w", req.Repo, err)
		}
		return &TagListing{Names: tags}, nil
	},
	Render: func(w Output, res *TagListing) error {
		if res.Tags == nil {
			return renderNames(w, &Lines{Names: res.Names})
		}
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TAG\tDIGEST\tPUSHED\tLAST PULLED")
		for _, t := range res.Tags {
			pulled := "never"
			if !t.Pulled.IsZero() {
				pulled = t.Pulled.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Tag, t.Digest, t.Pushed.UTC().Format(time.RFC3339), pulled)
		}
		return tw.Flush()
	},
})

var TagDelOp = register(&Op[TagDel, TagDeleted]{
	Name: "tag del",
	Do: func(_ context.Context, env *Env, _ *Task, req TagDel) (*TagDeleted, error) {
		repo, tag, err := parseRepoTag(req.Ref)
		if err != nil {
			return nil, err
		}
		d, err := env.Store.DeleteTag(repo, tag)
		if errors.Is(err, store.ErrManifestUnknown) {
			return nil, fmt.Errorf("no tag %s:%s", repo, tag)
		}
		if err != nil {
			return nil, fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
		}
		return &TagDeleted{Repo: repo, Tag: tag, Digest: d}, nil
	},
	Render: func(w Output, res *TagDeleted) error {
		fmt.Fprintf(w.Out, "deleted tag %s:%s (it pointed at %s)\n", res.Repo, res.Tag, res.Digest)
		_, err := fmt.Fprintln(w.Out, "berth gc frees the image once nothing else tags or lists it and it is older than gc's grace period")
		return err
	},
})

// parseRepoTag splits and checks a REPO:TAG argument.
func parseRepoTag(ref string) (repo, tag string, err error) {
	repo, tag, ok := strings.Cut(ref, ":")
	if !ok {
		return "", "", fmt.Errorf("%q is not REPO:TAG", ref)
	}
	if err := store.ValidateRepository(repo); err != nil {
		return "", "", err
	}
	if err := store.ValidateTag(tag); err != nil {
		return "", "", err
	}
	return repo, tag, nil
}

func renderNames(w Output, res *Lines) error {
	var b strings.Builder
	for _, l := range res.Names {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := fmt.Fprint(w.Out, b.String())
	return err
}
