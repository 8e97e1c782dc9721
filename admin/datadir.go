package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/berth-registry/berth/store"
)

// notDataDirError is what a maintenance command says about a --data that
// holds no registry: it must not make an empty one there and report on it.
func notDataDirError(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	what := "holds no meta.db"
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		what = "does not exist"
	}
	return fmt.Errorf("%s is not a berth data directory: it %s; check --data (or BERTH_DATA)\nTry: the directory `berth serve --data` uses; `berth serve` makes a new one on its first start", abs, what)
}

// permissionError explains a meta.db this user may not open: whose it is,
// and the two ways in (as that user, or through the running server's
// control socket, which admits the server's user and root).
func permissionError(dir, command string, err error) error {
	meta := filepath.Join(dir, "meta.db")
	owner := "another user"
	name := "OWNER"
	if uid, _, serr := store.FileOwner(meta); serr == nil {
		owner = "uid " + strconv.Itoa(uid)
		name = owner
		if u, lerr := user.LookupId(strconv.Itoa(uid)); lerr == nil {
			owner = fmt.Sprintf("user %s (uid %d)", u.Username, uid)
			name = u.Username
		}
	}
	return fmt.Errorf("%w: %s belongs to %s, and no server of yours answers on %s\nTry: sudo -u %s %s, or run it while the server runs, as its user or root (the control socket admits those)",
		err, meta, owner, SocketPath(dir), name, DataCommand(dir, command))
}
