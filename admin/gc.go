package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// GC collects garbage. A zero Grace or UploadTTL means no age limit at
// all; the defaults are the store's.
type GC struct {
	DryRun       bool          `flag:"dry-run" usage:"print what would be removed, change nothing" json:"dry_run,omitempty"`
	Grace        time.Duration `flag:"grace" usage:"keep everything pushed or uploaded more recently than this" json:"grace"`
	UploadTTL    time.Duration `flag:"upload-ttl" usage:"remove upload sessions idle for longer than this" json:"upload_ttl"`
	KeepUntagged bool          `flag:"keep-untagged" usage:"keep untagged manifests; remove only what no manifest references" json:"keep_untagged,omitempty"`
}

var GCOp = register(&Op[GC, store.GCReport]{
	Name:     "gc",
	Defaults: GC{Grace: store.DefaultGrace, UploadTTL: store.DefaultUploadTTL},
	Progress: "gc",
	Do: func(ctx context.Context, env *Env, task *Task, req GC) (*store.GCReport, error) {
		opts := store.GCOptions{DryRun: req.DryRun, KeepUntagged: req.KeepUntagged}
		var err error
		if opts.Grace, err = age("grace", req.Grace); err != nil {
			return nil, err
		}
		if opts.UploadTTL, err = age("upload-ttl", req.UploadTTL); err != nil {
			return nil, err
		}
		if task.watched() {
			opts.Progress = func(phase string, done, total int) {
				if phase != "" {
					task.Report(Progress{Phase: phase, Done: int64(done), Total: int64(total)})
				}
			}
		}
		start := time.Now()
		report, err := env.Store.CollectGarbage(ctx, opts)
		logGC(env.Logger, "gc run", report, time.Since(start), err)
		recordGC(env.Store, env.Logger, report, start, time.Since(start), false, err)
		if err != nil {
			err = fmt.Errorf("gc: %w", err)
		}
		return &report, err
	},
	Render: func(w Output, r *store.GCReport) error { return WriteGCReport(w.Out, *r) },
})

// age turns a duration flag into a GCOptions age: zero is store.NoAge.
func age(flag string, d time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("--%s: %s is negative", flag, d)
	case d == 0:
		return store.NoAge, nil
	}
	return d, nil
}

// WriteGCReport prints what a collection removed (or would remove), one
// line each, then a summary line with counts and bytes. The output depends
// only on the report, so it is the same wherever the collection ran.
func WriteGCReport(w io.Writer, r store.GCReport) error {
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	var b strings.Builder
	for _, m := range r.Manifests {
		fmt.Fprintf(&b, "%s manifest %s@%s (%s)\n", verb, m.Repo, m.Digest, HumanBytes(m.Size))
	}
	for _, l := range r.Links {
		fmt.Fprintf(&b, "%s link %s → %s\n", verb, l.Repo, l.Digest)
	}
	for _, bl := range r.Blobs {
		fmt.Fprintf(&b, "%s blob %s (%s)\n", verb, bl.Digest, HumanBytes(bl.Size))
	}
	for _, u := range r.Uploads {
		fmt.Fprintf(&b, "%s upload %s of %s (%s)\n", verb, u.ID, u.Repo, HumanBytes(u.Size))
	}
	for _, f := range r.Files {
		fmt.Fprintf(&b, "%s file %s (%s)\n", verb, f.Path, HumanBytes(f.Size))
	}
	for _, repo := range r.Repositories {
		fmt.Fprintf(&b, "%s empty repository %s\n", verb, repo)
	}
	if r.Kept > 0 {
		fmt.Fprintf(&b, "kept %s that changed while gc ran\n", plural(r.Kept, "item"))
	}
	if g := r.Graced; g.Manifests+g.Links+g.Blobs > 0 {
		fmt.Fprintf(&b, "kept for the grace period (%s): %s, %s, %s (%s) nothing references but that are too recent to remove; a gc from %s on frees them\n",
			ShortDuration(g.Grace), plural(g.Manifests, "manifest"), plural(g.Links, "link"), plural(g.Blobs, "blob"),
			HumanBytes(g.Bytes), g.FreeAfter.UTC().Format(time.RFC3339))
	}
	freed := "freed"
	if r.DryRun {
		freed = "to free"
	}
	fmt.Fprintf(&b, "gc: %s %s, %s, %s, %s, %s, %s; %s %s\n", verb,
		plural(len(r.Manifests), "manifest"), plural(len(r.Links), "link"), plural(len(r.Blobs), "blob"),
		plural(len(r.Uploads), "upload"), plural(len(r.Files), "orphan file"),
		plural(len(r.Repositories), "empty repository"), HumanBytes(r.Bytes()), freed)
	_, err := io.WriteString(w, b.String())
	return err
}

// ShortDuration formats d without the zero units time.Duration.String
// leaves at its end: "1h", "1h30m", "90s".
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// logGC logs one collection's outcome; logger may be nil (the command ran
// in the CLI process, whose output already says it all).
func logGC(logger *slog.Logger, msg string, r store.GCReport, took time.Duration, err error) {
	if logger == nil {
		return
	}
	attrs := []any{
		"dry_run", r.DryRun, "manifests", len(r.Manifests), "links", len(r.Links),
		"blobs", len(r.Blobs), "uploads", len(r.Uploads), "files", len(r.Files),
		"repositories", len(r.Repositories), "kept", r.Kept, "bytes", r.Bytes(),
		"grace", r.Graced.Grace, "graced_blobs", r.Graced.Blobs, "graced_bytes", r.Graced.Bytes,
		"duration", took.Round(time.Millisecond),
	}
	if err != nil {
		logger.Error(msg+" failed", append(attrs, "err", err)...)
		return
	}
	logger.Info(msg, attrs...)
}

// RunGCLoop collects garbage in s every interval with opts until ctx is
// done, logging every run to logger; it returns when ctx is done, so run
// it in its own goroutine. A non-positive interval returns at once. A run
// that fails is logged and the loop goes on: the next run starts afresh.
func RunGCLoop(ctx context.Context, s *store.Store, interval time.Duration, opts store.GCOptions, logger *slog.Logger) {
	if interval <= 0 {
		return
	}
	logger.Info("scheduled gc", "interval", interval, "grace", opts.GracePeriod(), "keep_untagged", opts.KeepUntagged)
	every(ctx, interval, func() {
		runRetention(ctx, s, logger)
		start := time.Now()
		report, err := s.CollectGarbage(ctx, opts)
		if ctx.Err() != nil {
			return // the server is stopping; the run's partial work is consistent
		}
		logGC(logger, "scheduled gc run", report, time.Since(start), err)
		recordGC(s, logger, report, start, time.Since(start), true, err)
		recordRun("gc", err)
	})
}

// every calls run each interval until ctx is done.
func every(ctx context.Context, interval time.Duration, run func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		run()
	}
}

// RunUploadExpiry removes upload sessions idle for ttl until ctx is done,
// checking every tenth of ttl (at most hourly, at least every second), and
// logs what it removed. A non-positive ttl returns at once. Run it in its
// own goroutine.
func RunUploadExpiry(ctx context.Context, s *store.Store, ttl time.Duration, logger *slog.Logger) {
	if ttl <= 0 {
		return
	}
	every(ctx, min(max(ttl/10, time.Second), time.Hour), func() {
		removed, err := s.ExpireUploads(ctx, ttl)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			logger.Error("expire idle uploads", "err", err)
		case len(removed) > 0:
			var bytes int64
			for _, u := range removed {
				bytes += u.Size
			}
			logger.Info("expired idle uploads", "sessions", len(removed), "bytes", bytes, "ttl", ttl)
		}
	})
}
