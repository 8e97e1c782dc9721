package admin

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/berth-registry/berth/importer"
	"github.com/berth-registry/berth/store"
)

// The import commands move another registry's content in (package
// importer). Their flags: dry-run, keep-fallback-tags, copy, progress
// (booleans), only (a glob), jobs (a count); oci takes repo, remote takes
// user and password-stdin (the password is then read from stdin, which
// over the socket comes from the CLI). DIR must be absolute: over the
// socket it is opened by the server, whose working directory differs.
var (
	// An import may be what makes a new data directory (moving in), so it
	// runs on one that does not exist yet.
	importRegistry2Command = Command{Name: "import registry2", Usage: "DIR " + importUsage, Run: runImport("registry2"), MakesDataDir: true}
	importOCICommand       = Command{Name: "import oci", Usage: "DIR [--repo NAME] " + importUsage, Run: runImport("oci"), MakesDataDir: true}
	importRemoteCommand    = Command{Name: "import remote", Usage: "URL [--user U --password-stdin] " + importUsage, Run: runImport("remote"), MakesDataDir: true}
)

const importUsage = "[--dry-run] [--only PATTERN] [--keep-fallback-tags] [--copy] [--jobs N]"

// runImport returns the Run of the import from one kind of source.
func runImport(kind string) func(context.Context, *Env, Args, Stdio) error {
	return func(ctx context.Context, env *Env, args Args, stdio Stdio) error {
		return importFrom(ctx, env, kind, args, stdio)
	}
}

func importFrom(ctx context.Context, env *Env, kind string, args Args, stdio Stdio) error {
	where, err := oneWord(args)
	if err != nil {
		return err
	}
	opts, err := importOptions(args)
	if err != nil {
		return err
	}
	if kind != "remote" && !filepath.IsAbs(where) {
		return fmt.Errorf("import: %s is not an absolute path (the running server would resolve it against its own directory)", where)
	}
	src, err := openImportSource(ctx, kind, where, args, stdio.In)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	bar := &countBar{w: stdio.Err}
	if show, _ := boolFlag(args, "progress"); show {
		opts.Progress = bar.update
	}
	start := time.Now()
	report, err := importer.Import(ctx, env.Store, src, opts, stdio.Out)
	bar.close()
	took := time.Since(start)
	if env.Logger != nil { // in the server; the CLI's output says it all
		env.Logger.Info("import", "source", report.Source, "dry_run", opts.DryRun, "manifests", report.Manifests,
			"broken", report.Broken, "bytes", report.Bytes, "problems", len(report.Problems),
			"duration", took.Round(time.Millisecond), "err", err)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if werr := writeImportSummary(stdio.Out, report, took); werr != nil {
		return werr
	}
	switch n := len(report.Problems); {
	case n > 0 && opts.DryRun:
		return fmt.Errorf("import: the dry run found %s (listed above)", plural(n, "problem"))
	case n > 0:
		return fmt.Errorf("import: finished with %s (listed above); manifests that lack content were recorded as broken, a push of those images heals them", plural(n, "problem"))
	}
	return nil
}

func importOptions(args Args) (importer.Options, error) {
	var opts importer.Options
	var err error
	for name, dst := range map[string]*bool{"dry-run": &opts.DryRun, "keep-fallback-tags": &opts.KeepFallbackTags, "copy": &opts.Copy} {
		if *dst, err = boolFlag(args, name); err != nil {
			return opts, err
		}
	}
	opts.Only, _ = args.Flag("only")
	if v, ok := args.Flag("jobs"); ok {
		if opts.Jobs, err = strconv.Atoi(v); err != nil || opts.Jobs < 1 || opts.Jobs > 64 {
			return opts, fmt.Errorf("--jobs: %q is not a number from 1 to 64", v)
		}
	}
	return opts, nil
}

func openImportSource(ctx context.Context, kind, where string, args Args, in io.Reader) (importer.Source, error) {
	switch kind {
	case "registry2":
		return importer.OpenRegistry2(where)
	case "oci":
		repo, _ := args.Flag("repo")
		return importer.OpenOCILayout(where, repo)
	case "remote":
		user, _ := args.Flag("user")
		var password []byte
		if fromStdin, err := boolFlag(args, "password-stdin"); err != nil {
			return nil, err
		} else if fromStdin {
			if user == "" {
				return nil, fmt.Errorf("--password-stdin needs --user")
			}
			if password, err = readPasswordStdin(in); err != nil {
				return nil, err
			}
		}
		return importer.OpenRemote(ctx, where, user, string(password))
	}
	return nil, fmt.Errorf("unknown source kind %q", kind)
}

// writeImportSummary prints the closing line of an import.
func writeImportSummary(w io.Writer, r importer.Report, took time.Duration) error {
	verb := "imported"
	if r.DryRun {
		verb = "would import"
	}
	blobs := 0
	for _, n := range r.Blobs {
		blobs += n
	}
	_, err := fmt.Fprintf(w, "import %s: %s %s, %s, %s (%d broken), %s (%s; %d linked, %d copied, %d fetched, %d already stored), %d fallback tags as referrers, %s in %s\n",
		r.Source, verb, plural(r.Repositories, "repository"), plural(r.Tags, "tag"),
		plural(r.Manifests, "manifest"), r.Broken, plural(blobs, "blob"), HumanBytes(r.Bytes),
		r.Blobs[store.BlobLinked], r.Blobs[store.BlobCopied], r.Blobs["fetched"], r.Blobs[store.BlobPresent],
		r.Fallback, plural(len(r.Problems), "problem"), took.Round(time.Millisecond))
	return err
}

// countBar draws the import's progress, in blobs, on stderr.
type countBar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *countBar) update(done, total int) {
	if b.bar == nil {
		b.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription("import blobs"), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	b.bar.ChangeMax(total)
	b.bar.Set(done)
}

func (b *countBar) close() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar = nil
	}
}
