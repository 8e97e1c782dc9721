package admin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// Verify checks the whole store. It fails when it finds any fault,
// repaired or not.
type Verify struct {
	Repair bool `flag:"repair" usage:"quarantine corrupt blobs and forget missing ones, so a re-push heals" json:"repair,omitempty"`
}

// VerifyResult is the result of verify.
type VerifyResult struct {
	store.VerifyReport
	Repair bool `json:"repair,omitempty"`
}

var VerifyOp = register(&Op[Verify, VerifyResult]{
	Name:     "verify",
	Progress: "verify",
	Do: func(ctx context.Context, env *Env, task *Task, req Verify) (*VerifyResult, error) {
		opts := store.VerifyOptions{Repair: req.Repair}
		if task.watched() {
			opts.Progress = func(done, total int64) {
				task.Report(Progress{Phase: "verify", Done: done, Total: total, Bytes: true})
			}
		}
		start := time.Now()
		report, err := env.Store.Verify(ctx, opts)
		if env.Logger != nil {
			env.Logger.Info("verify", "repair", req.Repair, "blobs", report.Blobs, "bytes", report.Bytes,
				"faults", len(report.Faults), "repaired", report.Repaired(), "err", err,
				"duration", time.Since(start).Round(time.Millisecond))
		}
		res := &VerifyResult{VerifyReport: report, Repair: req.Repair}
		if err != nil {
			return res, fmt.Errorf("verify: %w", err)
		}
		if n := len(report.Faults); n > 0 {
			hint := "run `" + DataCommand(env.Store.Dir(), "verify --repair") + "`, then re-push the images listed"
			if req.Repair {
				hint = "re-push the images listed, then verify again"
			}
			return res, fmt.Errorf("verify: %s found: %s", plural(n, "fault"), hint)
		}
		return res, nil
	},
	Render: func(w Output, res *VerifyResult) error { return WriteVerifyReport(w.Out, res.VerifyReport) },
})

// WriteVerifyReport prints each fault: a line naming it and what is wrong,
// then, indented, the images it breaks and what --repair did. A summary
// line ends the report. The output depends only on the report, so it is the
// same wherever verify ran.
func WriteVerifyReport(w io.Writer, r store.VerifyReport) error {
	var b strings.Builder
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "%s %s: %s\n", f.Kind, f.Subject, f.Problem)
		if len(f.Images) > 0 {
			fmt.Fprintf(&b, "  images: %s\n", strings.Join(f.Images, ", "))
		}
		if f.Repaired != "" {
			fmt.Fprintf(&b, "  repaired: %s\n", f.Repaired)
		}
	}
	found := "no faults"
	if n := len(r.Faults); n > 0 {
		found = plural(n, "fault")
		if k := r.Repaired(); k > 0 {
			found += fmt.Sprintf(", %d repaired", k)
		}
	}
	fmt.Fprintf(&b, "verify: checked %s (%s), %s, %s: %s\n",
		plural(r.Blobs, "blob"), HumanBytes(r.Bytes), plural(r.Manifests, "manifest"), plural(r.Tags, "tag"), found)
	_, err := io.WriteString(w, b.String())
	return err
}
