package admin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/berth-registry/berth/backup"
	"github.com/berth-registry/berth/server/auth"
)

// backupCommand writes a backup to stdout; the CLI puts it in a file or
// passes it on. Its flags: incremental (boolean: stdin carries the backup to
// follow, of which only the header is read), base-name (that backup's name,
// for messages), progress (boolean: draw a bar on stderr; the CLI sets it
// only on a terminal) and berth-version (recorded in the header). The
// summary goes to stderr, since stdout is the archive.
var backupCommand = Command{
	Name:  "backup",
	Usage: "--output FILE|- [--incremental-from FILE]",
	Run:   runBackup,
}

func runBackup(ctx context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	incremental, err := boolFlag(args, "incremental")
	if err != nil {
		return err
	}
	showProgress, err := boolFlag(args, "progress")
	if err != nil {
		return err
	}
	opts := backup.Options{}
	opts.BerthVersion, _ = args.Flag("berth-version")
	if incremental {
		name, ok := args.Flag("base-name")
		if !ok {
			name = "the backup to follow"
		}
		base, err := backup.ReadHeader(stdio.In, name)
		if err != nil {
			return fmt.Errorf("backup: --incremental-from: %w", err)
		}
		opts.Base = &base
	}
	bar := &byteBar{w: stdio.Err, description: "backup"}
	if showProgress {
		opts.Progress = bar.update
	}
	start := time.Now()
	h, err := backup.Write(ctx, env.Store, stdio.Out, opts)
	bar.close()
	if err != nil {
		env.logger().Error("backup failed", "err", err)
		return fmt.Errorf("backup: %w", err)
	}
	if env.Logger != nil {
		env.Logger.Info("backup", "id", h.ID, "base", h.Base, "blobs", len(h.Blobs), "inherited", len(h.Inherited),
			"bytes", h.Bytes(), "duration", time.Since(start).Round(time.Millisecond))
	}
	_, err = io.WriteString(stdio.Err, backupSummary(h)+"\n")
	return err
}

// backupSummary is the line that describes a backup just written.
func backupSummary(h backup.Header) string {
	var blobBytes int64
	for _, b := range h.Blobs {
		blobBytes += b.Size
	}
	kind := "full"
	held := ""
	if h.Incremental() {
		kind = "incremental after " + h.Base
		held = fmt.Sprintf(", %s already in earlier backups", plural(len(h.Inherited), "blob"))
	}
	return fmt.Sprintf("backup %s (%s): meta.db (%s) and %s (%s)%s",
		h.ID, kind, HumanBytes(h.MetaSize), plural(len(h.Blobs), "blob"), HumanBytes(blobBytes), held)
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
}

// Restore restores inputs (a full backup, then its incrementals in order)
// into the data directory dir: `berth restore`. It always runs in this
// process, and refuses while a server answers on dir's control socket (the
// lock on meta.db refuses any other berth process). It prints what it
// restored to stdio.Out.
func Restore(ctx context.Context, dir string, inputs []backup.Input, opts RestoreOptions, stdio Stdio) error {
	stdio = stdio.orEmpty()
	sock := SocketPath(dir)
	if conn, err := dialControl(sock); err == nil {
		conn.Close()
		return fmt.Errorf("restore: a server is serving %s (it answers on %s): stop it first", dir, sock)
	}
	bar := &byteBar{w: stdio.Err, description: "restore"}
	if opts.Progress {
		var done int64
		total := opts.InputBytes
		if total == 0 {
			total = -1
		}
		for i := range inputs {
			inputs[i].R = &countingReader{r: inputs[i].R, add: func(n int64) {
				done += n
				bar.update(done, total)
			}}
		}
	}
	res, err := backup.Restore(ctx, dir, inputs, backup.RestoreOptions{Force: opts.Force, CheckRule: auth.ValidateRule})
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

// byteBar is a progress bar of bytes, made at the first update, when the
// total is known; a negative total makes it a spinner with a rate.
type byteBar struct {
	w           io.Writer
	description string
	bar         *progressbar.ProgressBar
}

func (b *byteBar) update(done, total int64) {
	if b.bar == nil {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.description),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	b.bar.Set64(done)
}

func (b *byteBar) close() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar = nil
	}
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}
