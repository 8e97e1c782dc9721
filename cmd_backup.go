package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/backup"
	"github.com/berth-registry/berth/store"
)

// backupCommand is `berth backup`. The archive is made where the data is
// (here, or inside the running server) and streamed to this process, which
// writes the file: a relative path means the same with the server up or
// down, and the temp-then-rename happens where the file lives.
func backupCommand() *cli.Command {
	return adminCommand(admin.BackupOp, &cli.Command{
		Name:  "backup",
		Usage: "write a consistent backup of the registry (tar + zstd), while serving or stopped",
		Description: "--output - writes to stdout, for a pipe to ssh or a disk. A file is written under a\n" +
			"temporary name beside it and renamed when complete. --incremental-from writes only\n" +
			"the blobs the given backup (full or incremental) does not hold; restore then needs\n" +
			"the whole chain, in order. docs/backup.md tells the whole story.",
		Action: runBackupCommand,
	})
}

func runBackupCommand(c *cli.Context) error {
	req, err := requestFrom(c, admin.BackupOp.Defaults)
	if err != nil {
		return err
	}
	if req.Output == "" {
		return errors.New("backup needs --output FILE, or --output - for stdout")
	}
	req.BerthVersion = version
	// On Ctrl-C the backup stops and the temporary file goes, instead of
	// the process dying with it in place.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	stdio := adminStdio(c)
	run := func(w io.Writer) error {
		stdio.Out = w
		return admin.Call(ctx, dataDir(c), admin.BackupOp, req, stdio)
	}
	if req.Output == "-" {
		if isTerminal(c.App.Writer) {
			return errors.New("backup: stdout is a terminal: redirect it, or give --output FILE")
		}
		err = run(c.App.Writer)
	} else {
		// The file is readable by its owner only: a backup holds password
		// hashes and keys.
		err = store.WriteFileAtomic(req.Output, 0o600, run)
	}
	if err != nil && ctx.Err() != nil && c.Context.Err() == nil {
		if req.Output == "-" {
			return errors.New("backup: interrupted: what went to stdout is incomplete, and a restore refuses it")
		}
		return fmt.Errorf("backup: interrupted: %s was not written", req.Output)
	}
	return err
}

// restoreCommand is `berth restore`. It always runs in this process: the
// server must be stopped.
func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a backup (and its incrementals) into the data directory; the server must be stopped",
		Description: "Give the full backup first, then its incrementals in the order they were taken:\n" +
			"  berth restore --input full.tar.zst --input monday.tar.zst --input tuesday.tar.zst\n" +
			"--input - reads stdin. Every blob is verified. The data directory must be empty or\n" +
			"absent unless --force; it is replaced only when the whole restore succeeded.",
		Flags: requestFlags(reflect.ValueOf(admin.RestoreRequest{})),
		Action: func(c *cli.Context) error {
			req, err := requestFrom(c, admin.RestoreRequest{})
			if err != nil {
				return err
			}
			return runRestore(c, req)
		},
	}
}

func runRestore(c *cli.Context, req admin.RestoreRequest) error {
	names := req.Inputs
	if len(names) == 0 {
		return errors.New("restore needs --input FILE (or - for stdin), once for each backup of the chain")
	}
	var inputs []backup.Input
	var total int64
	stdinUsed := false
	for _, name := range names {
		if name == "-" {
			if stdinUsed {
				return errors.New("restore: --input - may be given once")
			}
			stdinUsed = true
			inputs = append(inputs, backup.Input{Name: "stdin", R: os.Stdin})
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			total += fi.Size()
		}
		inputs = append(inputs, backup.Input{Name: name, R: f})
	}
	if stdinUsed {
		total = 0 // unknown
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := admin.RestoreOptions{Force: req.Force, Progress: isTerminal(c.App.ErrWriter), InputBytes: total,
		BlobStore: req.BlobStore, CredentialsFile: req.CredentialsFile}
	return admin.Restore(ctx, dataDir(c), inputs, opts, adminStdio(c))
}
