package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// The retention operations (docs/retention.md): rules that say which tags
// of which repositories to keep, a run that removes the rest, and the
// schedule that runs them before each scheduled gc.

// RetentionAdd adds a retention rule.
type RetentionAdd struct {
	Name          string        `arg:"NAME" json:"name"`
	Repos         string        `flag:"repos" usage:"repositories the rule covers: comma-separated globs ('**' spans '/', '*' does not)" json:"repos"`
	KeepLast      int           `flag:"keep-last" usage:"keep the N most recently pushed tags" json:"keep_last,omitempty"`
	KeepPulled    int           `flag:"keep-pulled" usage:"keep the N most recently pulled tags" json:"keep_pulled,omitempty"`
	KeepWithin    time.Duration `flag:"keep-within" usage:"keep the tags pushed or pulled within this long, such as 720h" json:"keep_within,omitempty"`
	KeepTags      string        `flag:"keep-tags" usage:"keep the tags this regular expression matches (whole tag)" json:"keep_tags,omitempty"`
	UntaggedAfter time.Duration `flag:"untagged-after" usage:"delete untagged manifests neither pushed nor pulled within this long" json:"untagged_after,omitempty"`
}

// RetentionList lists the retention rules.
type RetentionList struct{}

// RetentionDel deletes a retention rule.
type RetentionDel struct {
	Name string `arg:"NAME" json:"name"`
}

// RetentionRun applies the rules now.
type RetentionRun struct {
	DryRun bool `flag:"dry-run" usage:"print every tag and manifest that would be removed, change nothing" json:"dry_run,omitempty"`
}

// RetentionRules is the result of retention list.
type RetentionRules struct {
	Rules []store.RetentionRule `json:"rules"`
}

// Done is the result of an operation that only reports success.
type Done struct {
	Message string `json:"message"`
}

var RetentionAddOp = register(&Op[RetentionAdd, Done]{
	Name: "retention add",
	Do: func(_ context.Context, env *Env, _ *Task, req RetentionAdd) (*Done, error) {
		r := store.RetentionRule{
			Name: req.Name, Repos: req.Repos, KeepLast: req.KeepLast, KeepPulled: req.KeepPulled,
			KeepWithin: req.KeepWithin, KeepTags: req.KeepTags, UntaggedAfter: req.UntaggedAfter,
		}
		if err := env.Store.AddRetentionRule(r); err != nil {
			return nil, err
		}
		return &Done{Message: fmt.Sprintf("added retention rule %s; berth retention run --dry-run shows what it would remove", req.Name)}, nil
	},
	Render: renderDone,
})

var RetentionListOp = register(&Op[RetentionList, RetentionRules]{
	Name: "retention list",
	Do: func(_ context.Context, env *Env, _ *Task, _ RetentionList) (*RetentionRules, error) {
		rs, err := env.Store.RetentionRules()
		if err != nil {
			return nil, fmt.Errorf("read retention rules: %w", err)
		}
		return &RetentionRules{Rules: rs}, nil
	},
	Render: func(w Output, res *RetentionRules) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tREPOS\tKEEP LAST\tKEEP PULLED\tKEEP WITHIN\tKEEP TAGS\tUNTAGGED AFTER")
		for _, r := range res.Rules {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Repos, countOrDash(r.KeepLast), countOrDash(r.KeepPulled),
				durationOrDash(r.KeepWithin), orDash(r.KeepTags), durationOrDash(r.UntaggedAfter))
		}
		return tw.Flush()
	},
})

var RetentionDelOp = register(&Op[RetentionDel, Done]{
	Name: "retention del",
	Do: func(_ context.Context, env *Env, _ *Task, req RetentionDel) (*Done, error) {
		if err := env.Store.DeleteRetentionRule(req.Name); err != nil {
			return nil, err
		}
		return &Done{Message: "deleted retention rule " + req.Name}, nil
	},
	Render: renderDone,
})

var RetentionRunOp = register(&Op[RetentionRun, store.RetentionReport]{
	Name: "retention run",
	Do: func(ctx context.Context, env *Env, _ *Task, req RetentionRun) (*store.RetentionReport, error) {
		start := time.Now()
		r, err := env.Store.ApplyRetention(ctx, store.RetentionOptions{DryRun: req.DryRun})
		logRetention(env.Logger, "retention run", r, time.Since(start), err)
		if !req.DryRun {
			recordRun("retention", err)
		}
		if err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
		return &r, nil
	},
	Render: func(w Output, r *store.RetentionReport) error { return writeRetentionReport(w, r) },
})

func writeRetentionReport(w Output, r *store.RetentionReport) error {
	verb, freed := "removed", "frees"
	if r.DryRun {
		verb, freed = "would remove", "would free"
	}
	var b strings.Builder
	for _, t := range r.Tags {
		fmt.Fprintf(&b, "%s tag %s:%s (%s)\n", verb, t.Repo, t.Tag, t.Digest)
	}
	for _, m := range r.Manifests {
		fmt.Fprintf(&b, "%s manifest %s@%s (%s)\n", verb, m.Repo, m.Digest, HumanBytes(m.Size))
	}
	if r.Kept > 0 {
		fmt.Fprintf(&b, "kept %s that changed while retention ran\n", plural(r.Kept, "item"))
	}
	fmt.Fprintf(&b, "retention: %s %s, %s in %s; the next gc %s %s\n", verb,
		plural(len(r.Tags), "tag"), plural(len(r.Manifests), "manifest"), plural(r.Repos, "repository"), freed, HumanBytes(r.Bytes))
	_, err := fmt.Fprint(w.Out, b.String())
	return err
}

func logRetention(logger *slog.Logger, msg string, r store.RetentionReport, took time.Duration, err error) {
	if logger == nil {
		return
	}
	if err != nil {
		logger.Error(msg+" failed", "err", err, "duration", took)
		return
	}
	logger.Info(msg, "dry_run", r.DryRun, "tags", len(r.Tags), "manifests", len(r.Manifests),
		"bytes", r.Bytes, "kept", r.Kept, "duration", took)
}

// runRetention applies the stored rules before a scheduled gc, so the gc
// frees what retention untagged; with no rules it does nothing.
func runRetention(ctx context.Context, s *store.Store, logger *slog.Logger) {
	start := time.Now()
	r, err := s.ApplyRetention(ctx, store.RetentionOptions{})
	if ctx.Err() != nil {
		return
	}
	if err != nil || r.Repos > 0 {
		logRetention(logger, "scheduled retention run", r, time.Since(start), err)
		recordRun("retention", err)
	}
}

func renderDone(w Output, res *Done) error {
	_, err := fmt.Fprintln(w.Out, res.Message)
	return err
}

func countOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func durationOrDash(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return ShortDuration(d)
}
