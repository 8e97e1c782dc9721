package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-registry/berth/store"
)

// BackupFile writes a backup of env's store into the file path, in this
// process, as `berth backup --output PATH [--incremental-from BASE]` does:
// the same operation (BackupOp, recorded in the backup history), written
// under a temporary name beside path and renamed when complete, readable by
// its owner only. base, when not empty, is an earlier backup file the new
// one follows. It refuses a path that exists and one inside the data
// directory (a backup there would be part of what it backs up and would
// go with a restore --force). The web UI's backups page starts backups
// through it.
func BackupFile(ctx context.Context, env *Env, path, base string) (*BackupWritten, error) {
	if err := CheckBackupPath(env, path); err != nil {
		return nil, err
	}
	req := Backup{Output: path, IncrementalFrom: base, BerthVersion: env.Version}
	if err := BackupOp.Prepare(&req, Client{}); err != nil {
		return nil, err
	}
	var res *BackupWritten
	err := store.WriteFileAtomic(path, 0o600, func(w io.Writer) error {
		var err error
		res, err = BackupOp.run(ctx, env, &Task{Out: w}, req)
		return err
	})
	return res, err
}

// CheckBackupPath refuses what BackupFile refuses to write to: a relative
// path, a path inside the data directory, a file that exists.
func CheckBackupPath(env *Env, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("backup: %s: give an absolute path", path)
	}
	path = filepath.Clean(path)
	if rel, err := filepath.Rel(filepath.Clean(env.Store.Dir()), path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("backup: %s is inside the data directory: choose a directory outside it", path)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: %s exists: a backup never replaces a file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
