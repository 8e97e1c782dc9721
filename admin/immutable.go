package admin

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// The immutability operations (docs/retention.md): rules that make tags
// impossible to move or delete through the API, and the admin's one-off
// lift.

// ImmutableAdd adds an immutability rule.
type ImmutableAdd struct {
	Name       string `arg:"NAME" json:"name"`
	Repos      string `flag:"repos" usage:"repositories: comma-separated globs ('**' spans '/', '*' does not)" json:"repos"`
	Tags       string `flag:"tags" usage:"tags: comma-separated globs, such as 'v*'" json:"tags"`
	Signatures bool   `flag:"signatures" usage:"also catch the fallback tags of signatures and attestations (sha256-<hex>, .sig, .att)" json:"signatures,omitempty"`
}

// ImmutableList lists the immutability rules.
type ImmutableList struct{}

// ImmutableDel deletes an immutability rule.
type ImmutableDel struct {
	Name string `arg:"NAME" json:"name"`
}

// ImmutableLift lets one overwrite or delete of an immutable tag through.
type ImmutableLift struct {
	Ref string        `arg:"REPO:TAG" json:"ref"`
	For time.Duration `flag:"for" usage:"how long the lift waits for the change it allows" json:"for"`
}

// ImmutableRules is the result of immutable list.
type ImmutableRules struct {
	Rules []store.ImmutableRule `json:"rules"`
}

var ImmutableAddOp = register(&Op[ImmutableAdd, Done]{
	Name: "immutable add",
	Do: func(_ context.Context, env *Env, _ *Task, req ImmutableAdd) (*Done, error) {
		r := store.ImmutableRule{Name: req.Name, Repos: req.Repos, Tags: req.Tags, Signatures: req.Signatures}
		if err := env.Store.AddImmutableRule(r); err != nil {
			return nil, err
		}
		return &Done{Message: fmt.Sprintf("added immutability rule %s: tags %s of %s can no longer be moved or deleted", req.Name, req.Tags, req.Repos)}, nil
	},
	Render: renderDone,
})

var ImmutableListOp = register(&Op[ImmutableList, ImmutableRules]{
	Name: "immutable list",
	Do: func(_ context.Context, env *Env, _ *Task, _ ImmutableList) (*ImmutableRules, error) {
		return &ImmutableRules{Rules: env.Store.ImmutableRules()}, nil
	},
	Render: func(w Output, res *ImmutableRules) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tREPOS\tTAGS\tSIGNATURES")
		for _, r := range res.Rules {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.Name, r.Repos, r.Tags, r.Signatures)
		}
		return tw.Flush()
	},
})

var ImmutableDelOp = register(&Op[ImmutableDel, Done]{
	Name: "immutable del",
	Do: func(_ context.Context, env *Env, _ *Task, req ImmutableDel) (*Done, error) {
		if err := env.Store.DeleteImmutableRule(req.Name); err != nil {
			return nil, err
		}
		return &Done{Message: "deleted immutability rule " + req.Name}, nil
	},
	Render: renderDone,
})

var ImmutableLiftOp = register(&Op[ImmutableLift, Done]{
	Name:     "immutable lift",
	Defaults: ImmutableLift{For: 10 * time.Minute},
	Do: func(_ context.Context, env *Env, _ *Task, req ImmutableLift) (*Done, error) {
		repo, tag, err := parseRepoTag(req.Ref)
		if err != nil {
			return nil, err
		}
		if err := env.Store.LiftImmutable(repo, tag, req.For); err != nil {
			return nil, err
		}
		return &Done{Message: fmt.Sprintf("the next overwrite or delete of %s:%s within %s is allowed, once", repo, tag, ShortDuration(req.For))}, nil
	},
	Render: renderDone,
})
