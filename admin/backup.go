package admin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/backup"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// Backup writes a backup of the store as a stream. Output and
// IncrementalFrom are the CLI's business: it writes the stream to Output,
// and Prepare reads the header of IncrementalFrom into Base.
type Backup struct {
	Output          string `flag:"output,o" usage:"the backup file, or - for stdout" json:"-"`
	IncrementalFrom string `flag:"incremental-from" usage:"an earlier backup (full or incremental) to write only the changes since" json:"-"`
	// Base is the header of the backup this one follows; nil for a full
	// backup.
	Base *backup.Header `json:"base,omitempty"`
	// BerthVersion is recorded in the header.
	BerthVersion string `json:"berth_version,omitempty"`
	// Path is where the backup goes, as an absolute path, for the backup
	// history the admin pages show; empty for a stream (--output -).
	Path string `json:"path,omitempty"`
}

// BackupWritten is the result of backup: what the summary line says. It is
// small on purpose: a streaming operation's result travels in an HTTP
// trailer, which clients bound to a few KiB (the header's blob lists are in
// the archive).
type BackupWritten struct {
	ID        string `json:"id"`
	Base      string `json:"base,omitempty"` // the ID of the backup this one follows
	MetaSize  int64  `json:"meta_size"`
	Blobs     int    `json:"blobs"`
	BlobBytes int64  `json:"blob_bytes"`
	Inherited int    `json:"inherited,omitempty"`
}

var BackupOp = register(&Op[Backup, BackupWritten]{
	Name:     "backup",
	Streams:  true,
	Progress: "backup",
	Prepare: func(req *Backup, _ Client) error {
		if req.Output != "" && req.Output != "-" {
			if abs, err := filepath.Abs(req.Output); err == nil {
				req.Path = abs
			}
		}
		if req.IncrementalFrom == "" {
			return nil
		}
		f, err := os.Open(req.IncrementalFrom)
		if err != nil {
			return fmt.Errorf("--incremental-from: %w", err)
		}
		defer f.Close()
		base, err := backup.ReadHeader(f, req.IncrementalFrom)
		if err != nil {
			return fmt.Errorf("backup: --incremental-from: %w", err)
		}
		req.Base = &base
		return nil
	},
	Do: func(ctx context.Context, env *Env, task *Task, req Backup) (*BackupWritten, error) {
		opts := backup.Options{Base: req.Base, BerthVersion: req.BerthVersion}
		if task.watched() {
			opts.Progress = func(done, total int64) {
				task.Report(Progress{Phase: "backup", Done: done, Total: total, Bytes: true})
			}
		}
		start := time.Now()
		out := &countingWriter{w: task.Out}
		h, err := backup.Write(ctx, env.Store, out, opts)
		if err != nil {
			if env.Logger != nil {
				env.Logger.Error("backup failed", "err", err)
			}
			return nil, fmt.Errorf("backup: %w", err)
		}
		if env.Logger != nil {
			env.Logger.Info("backup", "id", h.ID, "base", h.Base, "blobs", len(h.Blobs), "inherited", len(h.Inherited),
				"bytes", h.Bytes(), "duration", time.Since(start).Round(time.Millisecond))
		}
		res := &BackupWritten{ID: h.ID, Base: h.Base, MetaSize: h.MetaSize, Blobs: len(h.Blobs), Inherited: len(h.Inherited)}
		for _, b := range h.Blobs {
			res.BlobBytes += b.Size
		}
		recordBackup(env.Store, env.Logger, store.BackupRun{
			Finished: time.Now().UTC(), Duration: time.Since(start), ID: h.ID, Base: h.Base, Path: req.Path,
			Size: out.n, Blobs: res.Blobs, BlobBytes: res.BlobBytes,
		})
		return res, nil
	},
	Render: func(w Output, res *BackupWritten) error {
		_, err := io.WriteString(w.Err, backupSummary(*res)+"\n")
		return err
	},
})

// backupSummary is the line that describes a backup just written.
func backupSummary(b BackupWritten) string {
	kind := "full"
	held := ""
	if b.Base != "" {
		kind = "incremental after " + b.Base
		held = fmt.Sprintf(", %s already in earlier backups", plural(b.Inherited, "blob"))
	}
	return fmt.Sprintf("backup %s (%s): meta.db (%s) and %s (%s)%s",
		b.ID, kind, HumanBytes(b.MetaSize), plural(b.Blobs, "blob"), HumanBytes(b.BlobBytes), held)
}

// RestoreRequest is the command line of restore. It is no Op: a restore
// always runs in the CLI process (the server must be stopped), reading the
// files it names there.
type RestoreRequest struct {
	Inputs []string `flag:"input" usage:"a backup file, or - for stdin; repeat for incrementals, in order"`
	Force  bool     `flag:"force" usage:"replace a data directory that is not empty"`
	// BlobStore and CredentialsFile say where the restored blobs go,
	// whatever store the backup was taken from.
	BlobStore       string `flag:"blob-store" usage:"where the restored blobs go: dir (DATA/blobs) or s3://bucket/prefix?endpoint=URL&region=R&path-style=true; serve it with the same --blob-store"`
	CredentialsFile string `flag:"s3-credentials-file" usage:"file (mode 0600) with the S3 keys, as serve takes it; default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"`
}

// RestoreOptions adjust Restore.
type RestoreOptions struct {
	// Force replaces a data directory that is not empty.
	Force bool
	// Progress draws a bar on stderr as the inputs are read.
	Progress bool
	// InputBytes is the inputs' total size, for the bar's ETA; zero when
	// unknown (stdin).
	InputBytes int64
	// BlobStore is where the blobs go ("" or "dir": DATA/blobs), with the
	// S3 credentials file, if any.
	BlobStore, CredentialsFile string
}

// Restore restores inputs (a full backup, then its incrementals in order)
// into the data directory dir: `berth restore`. It always runs in this
// process, and refuses while a server answers on dir's control socket (the
// lock on meta.db refuses any other berth process). It prints what it
// restored to stdio.Out.
func Restore(ctx context.Context, dir string, inputs []backup.Input, opts RestoreOptions, stdio Stdio) error {
	stdio = stdio.orEmpty()
	sock := SocketPath(dir)
	if _, err := dialControl(sock); err == nil {
		return fmt.Errorf("restore: a server is serving %s (it answers on %s): stop it first", dir, sock)
	}
	bar := &progressBar{w: stdio.Err, description: "restore"}
	if opts.Progress {
		var done int64
		total := opts.InputBytes
		if total == 0 {
			total = -1
		}
		for i := range inputs {
			inputs[i].R = &countingReader{r: inputs[i].R, add: func(n int64) {
				done += n
				bar.update(Progress{Phase: "restore", Done: done, Total: total, Bytes: true})
			}}
		}
	}
	bopts := backup.RestoreOptions{Force: opts.Force, CheckRule: auth.ValidateRule}
	if opts.BlobStore != "" && opts.BlobStore != store.DirLocation {
		blobs, err := store.OpenBlobStore(dir, opts.BlobStore, store.BlobStoreOptions{CredentialsFile: opts.CredentialsFile})
		if err != nil {
			return fmt.Errorf("restore: --blob-store: %w", err)
		}
		bopts.Blobs = blobs
	}
	res, err := backup.Restore(ctx, dir, inputs, bopts)
	bar.close()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return writeRestoreReport(stdio.Out, dir, inputs, res)
}

func writeRestoreReport(w io.Writer, dir string, inputs []backup.Input, res backup.RestoreResult) error {
	for i, h := range res.Headers {
		kind := "full"
		if h.Incremental() {
			kind = "incremental"
		}
		fmt.Fprintf(w, "read %s: backup %s (%s) of %s, %s (%s)\n", inputs[i].Name, h.ID, kind,
			h.Created.UTC().Format(time.RFC3339), plural(len(h.Blobs), "blob"), HumanBytes(h.Bytes()))
	}
	if res.DroppedUploads > 0 {
		fmt.Fprintf(w, "dropped %s in progress at the snapshot: clients start them again\n", plural(res.DroppedUploads, "upload session"))
	}
	if res.TLS {
		fmt.Fprintln(w, "restored DATA/tls: the CA and server certificate of the backup")
	}
	if len(res.Kept) > 0 {
		fmt.Fprintf(w, "kept from the replaced data directory, which no backup holds: %s\n", strings.Join(res.Kept, ", "))
	}
	if res.Leftover != "" {
		fmt.Fprintf(w, "could not remove the replaced data directory, now at %s: remove it yourself\n", res.Leftover)
	}
	verb := "restored"
	if res.Replaced {
		verb = "replaced the old data and restored"
	}
	_, err := fmt.Fprintf(w, "restore: %s %s (%s) into %s\n", verb, plural(res.Blobs, "blob"), HumanBytes(res.Bytes), dir)
	return err
}
