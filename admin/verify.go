package admin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// verifyCommand checks the whole store. Its flags: repair and progress
// (booleans; progress draws a bar on stderr, the CLI sets it only on a
// terminal). It fails when it finds any fault, repaired or not.
var verifyCommand = Command{
	Name:  "verify",
	Usage: "[--repair]",
	Run:   runVerify,
}

func runVerify(ctx context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	repair, err := boolFlag(args, "repair")
	if err != nil {
		return err
	}
	showProgress, err := boolFlag(args, "progress")
	if err != nil {
		return err
	}
	opts := store.VerifyOptions{Repair: repair}
	bar := &byteBar{w: stdio.Err, description: "verify"}
	if showProgress {
		opts.Progress = bar.update
	}
	start := time.Now()
	report, err := env.Store.Verify(ctx, opts)
	bar.close()
	if env.Logger != nil {
		env.Logger.Info("verify", "repair", repair, "blobs", report.Blobs, "bytes", report.Bytes,
			"faults", len(report.Faults), "repaired", report.Repaired(), "err", err,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	if werr := WriteVerifyReport(stdio.Out, report); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if n := len(report.Faults); n > 0 {
		hint := "run `" + DataCommand(env.Store.Dir(), "verify --repair") + "`, then re-push the images listed"
		if repair {
			hint = "re-push the images listed, then verify again"
		}
		return fmt.Errorf("verify: %s found: %s", plural(n, "fault"), hint)
	}
	return nil
}

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
