package admin

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/importer"
	"github.com/berth-registry/berth/store"
)

// The import operations move another registry's content in (package
// importer). A directory is made absolute in the CLI process (Prepare):
// over the socket the server opens it, from another working directory.

// ImportOptions are the flags every import takes.
type ImportOptions struct {
	DryRun           bool   `flag:"dry-run" usage:"print repositories, tags, manifests, blobs, bytes and problems; change nothing" json:"dry_run,omitempty"`
	Only             string `flag:"only" usage:"import only repositories matching this glob (* matches slashes too)" json:"only,omitempty"`
	KeepFallbackTags bool   `flag:"keep-fallback-tags" usage:"keep referrers fallback tags (sha256-<hex>, .sig, .att, .sbom) as tags too" json:"keep_fallback_tags,omitempty"`
	Copy             bool   `flag:"copy" usage:"copy blob files instead of hard-linking them" json:"copy,omitempty"`
	Jobs             int    `flag:"jobs" usage:"blobs imported at once" json:"jobs"`
}

// ImportRegistry2 imports a registry:2 (distribution) storage directory.
type ImportRegistry2 struct {
	Dir string `arg:"DIR" json:"dir"`
	ImportOptions
}

// ImportOCI imports an OCI image layout, or a tree of them.
type ImportOCI struct {
	Dir  string `arg:"DIR" json:"dir"`
	Repo string `flag:"repo" usage:"the repository a single layout goes to (default: the directory's name)" json:"repo,omitempty"`
	ImportOptions
}

// ImportRemote copies a running registry over the API. The password is
// read from stdin in the CLI process and sent to the server, which signs in
// to the source with it.
type ImportRemote struct {
	URL           string `arg:"URL" json:"url"`
	User          string `flag:"user" usage:"sign in to the source as this user" json:"user,omitempty"`
	PasswordStdin bool   `flag:"password-stdin" usage:"read the source password from stdin" json:"-"`
	Password      string `json:"password,omitempty"`
	ImportOptions
}

// Imported is the result of an import: the lines written as it went (one
// per problem and per repository), the report, and how long it took.
type ImportResult struct {
	Lines  []string        `json:"lines"`
	Report importer.Report `json:"report"`
	Took   time.Duration   `json:"took"`
}

var defaultImport = ImportOptions{Jobs: importer.DefaultJobs}

var ImportRegistry2Op = register(&Op[ImportRegistry2, ImportResult]{
	Name:     "import registry2",
	Defaults: ImportRegistry2{ImportOptions: defaultImport},
	Progress: "import",
	Prepare:  func(req *ImportRegistry2, _ Client) error { return absolute(&req.Dir) },
	Do: func(ctx context.Context, env *Env, task *Task, req ImportRegistry2) (*ImportResult, error) {
		src, err := importer.OpenRegistry2(req.Dir)
		return runImport(ctx, env, task, src, err, req.ImportOptions)
	},
	Render: renderImport,
})

var ImportOCIOp = register(&Op[ImportOCI, ImportResult]{
	Name:     "import oci",
	Defaults: ImportOCI{ImportOptions: defaultImport},
	Progress: "import",
	Prepare:  func(req *ImportOCI, _ Client) error { return absolute(&req.Dir) },
	Do: func(ctx context.Context, env *Env, task *Task, req ImportOCI) (*ImportResult, error) {
		src, err := importer.OpenOCILayout(req.Dir, req.Repo)
		return runImport(ctx, env, task, src, err, req.ImportOptions)
	},
	Render: renderImport,
})

var ImportRemoteOp = register(&Op[ImportRemote, ImportResult]{
	Name:     "import remote",
	Defaults: ImportRemote{ImportOptions: defaultImport},
	Progress: "import",
	Prepare: func(req *ImportRemote, c Client) error {
		if !req.PasswordStdin || req.Password != "" {
			return nil
		}
		if req.User == "" {
			return fmt.Errorf("--password-stdin needs --user")
		}
		pw, err := readPasswordStdin(c.In)
		req.Password = string(pw)
		return err
	},
	Do: func(ctx context.Context, env *Env, task *Task, req ImportRemote) (*ImportResult, error) {
		src, err := importer.OpenRemote(ctx, req.URL, req.User, req.Password)
		return runImport(ctx, env, task, src, err, req.ImportOptions)
	},
	Render: renderImport,
})

// absolute makes a directory argument absolute in the CLI process.
func absolute(dir *string) error {
	abs, err := filepath.Abs(*dir)
	*dir = abs
	return err
}

// runImport imports from src (opened with openErr) and gathers what the
// importer writes as it goes into the result.
func runImport(ctx context.Context, env *Env, task *Task, src importer.Source, openErr error, o ImportOptions) (*ImportResult, error) {
	if openErr != nil {
		return nil, fmt.Errorf("import: %w", openErr)
	}
	if o.Jobs < 1 || o.Jobs > 64 {
		return nil, fmt.Errorf("--jobs: %d is not a number from 1 to 64", o.Jobs)
	}
	opts := importer.Options{DryRun: o.DryRun, Only: o.Only, KeepFallbackTags: o.KeepFallbackTags, Copy: o.Copy, Jobs: o.Jobs}
	if task.watched() {
		opts.Progress = func(done, total int) {
			task.Report(Progress{Phase: "blobs", Done: int64(done), Total: int64(total)})
		}
	}
	var out bytes.Buffer
	start := time.Now()
	report, err := importer.Import(ctx, env.Store, src, opts, &out)
	took := time.Since(start)
	if env.Logger != nil { // in the server; the CLI's output says it all
		env.Logger.Info("import", "source", report.Source, "dry_run", opts.DryRun, "manifests", report.Manifests,
			"broken", report.Broken, "bytes", report.Bytes, "problems", len(report.Problems),
			"duration", took.Round(time.Millisecond), "err", err)
	}
	res := &ImportResult{Lines: strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), Report: report, Took: took}
	if out.Len() == 0 {
		res.Lines = nil
	}
	if err != nil {
		res.Report.Source = "" // no summary for a failed import
		return res, fmt.Errorf("import: %w", err)
	}
	switch n := len(report.Problems); {
	case n > 0 && opts.DryRun:
		return res, fmt.Errorf("import: the dry run found %s (listed above)", plural(n, "problem"))
	case n > 0:
		return res, fmt.Errorf("import: finished with %s (listed above); manifests that lack content were recorded as broken, a push of those images heals them", plural(n, "problem"))
	}
	return res, nil
}

// renderImport prints the lines of an import, then its summary.
func renderImport(w Output, res *ImportResult) error {
	for _, l := range res.Lines {
		fmt.Fprintln(w.Out, l)
	}
	if res.Report.Source == "" {
		return nil
	}
	r := res.Report
	verb := "imported"
	if r.DryRun {
		verb = "would import"
	}
	blobs := 0
	for _, n := range r.Blobs {
		blobs += n
	}
	_, err := fmt.Fprintf(w.Out, "import %s: %s %s, %s, %s (%d broken), %s (%s; %d linked, %d copied, %d fetched, %d already stored), %d fallback tags as referrers, %s in %s\n",
		r.Source, verb, plural(r.Repositories, "repository"), plural(r.Tags, "tag"),
		plural(r.Manifests, "manifest"), r.Broken, plural(blobs, "blob"), HumanBytes(r.Bytes),
		r.Blobs[store.BlobLinked], r.Blobs[store.BlobCopied], r.Blobs["fetched"], r.Blobs[store.BlobPresent],
		r.Fallback, plural(len(r.Problems), "problem"), res.Took.Round(time.Millisecond))
	return err
}
