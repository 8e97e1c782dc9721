package admin

import (
	"io"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/store"
)

// recordGC keeps a collection that could change the store (not a dry run)
// in the store's GC history, for the admin pages. A failure to record is
// logged, never the run's error: the collection itself is done.
func recordGC(s *store.Store, logger *slog.Logger, r store.GCReport, started time.Time, took time.Duration, scheduled bool, runErr error) {
	if r.DryRun {
		return
	}
	run := store.GCRun{
		Started: started.UTC(), Duration: took, Scheduled: scheduled,
		Manifests: len(r.Manifests), Links: len(r.Links), Blobs: len(r.Blobs), Uploads: len(r.Uploads),
		Files: len(r.Files), Repos: len(r.Repositories), Bytes: r.Bytes(),
	}
	if runErr != nil {
		run.Error = runErr.Error()
	}
	if err := s.RecordGCRun(run); err != nil && logger != nil {
		logger.Warn("record gc run", "err", err)
	}
}

// recordBackup keeps a backup just written in the store's backup history.
func recordBackup(s *store.Store, logger *slog.Logger, run store.BackupRun) {
	if err := s.RecordBackup(run); err != nil && logger != nil {
		logger.Warn("record backup", "err", err)
	}
}

// countingWriter counts what passes through it to w.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
