package ui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/admin"
)

// backupJob is the backup the backups page started, if one runs: a backup
// can take longer than a request should, so it runs on in the server and
// the page shows how it went. One at a time. Safe for concurrent use.
type backupJob struct {
	mu      sync.Mutex
	running bool
	started time.Time
	path    string
	failed  string // why the last one the page started failed; "" when it did not
}

// backups shows the last full and incremental backups and every recorded
// one, with the form that starts a new one.
func (u *UI) backups(c *fiber.Ctx, v *viewer) error { return u.backupsPage(c, v, "", "") }

func (u *UI) backupsPage(c *fiber.Ctx, v *viewer, output, failure string) error {
	runs, err := u.st.Backups()
	if err != nil {
		return err
	}
	data := map[string]any{"Runs": runs, "Output": output, "Failure": failure}
	for _, r := range runs {
		if r.Base == "" && data["LastFull"] == nil {
			data["LastFull"] = r
		}
		if r.Base != "" && data["LastIncremental"] == nil {
			data["LastIncremental"] = r
		}
		if r.Path != "" && data["Dir"] == nil {
			data["Dir"] = filepath.Dir(r.Path)
		}
	}
	j := &u.backup
	j.mu.Lock()
	if j.running {
		data["Running"], data["RunningPath"] = j.started, j.path
	}
	if j.failed != "" && failure == "" {
		data["Failure"] = j.failed
	}
	j.mu.Unlock()
	return u.render(c, v, "backups", "Backups", data)
}

// backupStart starts a full or incremental backup into a new file in the
// directory the form names, through admin.BackupFile: the operation
// `berth backup --output FILE [--incremental-from LAST]` runs. An
// incremental follows the newest recorded backup whose file is still
// there.
func (u *UI) backupStart(c *fiber.Ctx, v *viewer) error {
	dir := filepath.Clean(c.FormValue("dir"))
	if !filepath.IsAbs(dir) {
		return u.backupRefused(c, v, "give the directory as an absolute path on the server")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return u.backupRefused(c, v, fmt.Sprintf("%s is not a directory on the server", dir))
	}
	kind, base := c.FormValue("kind"), ""
	switch kind {
	case "full":
	case "incremental":
		var err error
		if base, err = u.lastBackupFile(); err != nil {
			return err
		}
		if base == "" {
			return u.backupRefused(c, v, "no earlier backup file to follow: take a full backup first")
		}
	default:
		return u.backupRefused(c, v, "choose a full or an incremental backup")
	}
	now := time.Now().UTC()
	path := filepath.Join(dir, "berth-"+now.Format("20060102T150405Z")+"-"+kind+".tar.zst")
	if err := admin.CheckBackupPath(u.opts.Admin, path); err != nil {
		return u.backupRefused(c, v, err.Error())
	}
	if err := admin.CheckBackupPath(u.opts.Admin, path); err != nil {
		return u.backupRefused(c, v, err.Error())
	}
	j := &u.backup
	j.mu.Lock()
	if j.running {
		j.mu.Unlock()
		c.Status(fiber.StatusConflict)
		return u.backupsPage(c, v, "", "a backup is running already")
	}
	j.running, j.started, j.path, j.failed = true, now, path, ""
	j.mu.Unlock()
	go u.runBackup(path, base)
	return u.backupsPage(c, v, "started a "+kind+" backup into "+path, "")
}

func (u *UI) runBackup(path, base string) {
	_, err := admin.BackupFile(u.opts.Context, u.opts.Admin, path, base)
	j := &u.backup
	j.mu.Lock()
	defer j.mu.Unlock()
	j.running = false
	if err != nil {
		j.failed = err.Error()
		u.log.Error("backup started in the web UI failed", "path", path, "err", err)
	}
}

func (u *UI) backupRefused(c *fiber.Ctx, v *viewer, msg string) error {
	c.Status(fiber.StatusBadRequest)
	return u.backupsPage(c, v, "", msg)
}

// lastBackupFile returns the newest recorded backup whose file still
// exists, or "" when there is none.
func (u *UI) lastBackupFile() (string, error) {
	runs, err := u.st.Backups()
	if err != nil {
		return "", err
	}
	for _, r := range runs {
		if r.Path == "" {
			continue
		}
		if _, err := os.Stat(r.Path); err == nil {
			return r.Path, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}
