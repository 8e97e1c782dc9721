package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-registry/berth/store"
)

// BlobsMigrate moves the blobs into another blob store while the registry
// serves (store.MigrateBlobs).
type BlobsMigrate struct {
	To              string `flag:"to" usage:"where the blobs go: dir (DATA/blobs) or s3://bucket/prefix?endpoint=URL&region=R&path-style=true" json:"to"`
	CredentialsFile string `flag:"s3-credentials-file" usage:"file (mode 0600) with the S3 keys, as serve takes it; default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the process that migrates" json:"credentials_file,omitempty"`
}

// BlobsMigrateResult is the result of blobs migrate.
type BlobsMigrateResult struct {
	store.MigrateReport
}

var BlobsMigrateOp = register(&Op[BlobsMigrate, BlobsMigrateResult]{
	Name:     "blobs migrate",
	Progress: "migrate",
	Prepare: func(req *BlobsMigrate, _ Client) error {
		if req.CredentialsFile == "" {
			return nil
		}
		return absolute(&req.CredentialsFile)
	},
	Do: func(ctx context.Context, env *Env, task *Task, req BlobsMigrate) (*BlobsMigrateResult, error) {
		if req.To == "" {
			return nil, fmt.Errorf("blobs migrate needs --to dir or --to s3://bucket/prefix?endpoint=…")
		}
		to, err := store.OpenBlobStore(env.Store.Dir(), req.To, store.BlobStoreOptions{CredentialsFile: req.CredentialsFile})
		if err != nil {
			return nil, fmt.Errorf("blobs migrate: %w", err)
		}
		opts := store.MigrateOptions{}
		if task.watched() {
			opts.Progress = func(done, total int64) {
				task.Report(Progress{Phase: "copy", Done: done, Total: total, Bytes: true})
			}
		}
		report, err := env.Store.MigrateBlobs(ctx, to, opts)
		if env.Logger != nil {
			env.Logger.Info("blobs migrate", "from", report.From, "to", report.To, "blobs", report.Blobs,
				"bytes", report.Bytes, "missing", len(report.Missing), "err", err,
				"duration", report.Took.Round(time.Millisecond))
		}
		res := &BlobsMigrateResult{MigrateReport: report}
		if err != nil {
			return res, fmt.Errorf("blobs migrate: %w\nTry: run it again: it resumes where it stopped", err)
		}
		return res, nil
	},
	Render: func(w Output, res *BlobsMigrateResult) error {
		r := res.MigrateReport
		for _, d := range r.Missing {
			fmt.Fprintf(w.Out, "missing blob %s: it has a record but no bytes in %s; left as it is (berth verify reports it)\n", d, r.From)
		}
		if r.Took == 0 {
			return nil // stopped before the end: the error says why
		}
		resumed := ""
		if r.Resumed {
			resumed = " (resumed)"
		}
		rate := ""
		if secs := r.Took.Seconds(); secs > 0 && r.Bytes > 0 {
			rate = fmt.Sprintf(", %.1f MB/s", float64(r.Bytes)/secs/1e6)
		}
		_, err := fmt.Fprintf(w.Out, "blobs migrate: %s → %s%s: copied %s (%s) in %s%s, removed %d old copies; the blobs are now in %s\n",
			r.From, r.To, resumed, plural(r.Blobs, "blob"), HumanBytes(r.Bytes), r.Took.Round(time.Millisecond), rate, r.Removed, r.To)
		return err
	},
})
