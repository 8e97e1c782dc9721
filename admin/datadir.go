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
	owner, name := DataOwner(dir)
	return fmt.Errorf("%w: %s belongs to %s, and no server of yours answers on %s\nTry: sudo -u %s %s, or run it while the server runs, as its user or root (the control socket admits those)",
		err, filepath.Join(dir, "meta.db"), owner, SocketPath(dir), name, DataCommand(dir, command))
}

// DataOwner names the owner of DATA/meta.db for messages: "user berth (uid
// 998)" and "berth"; "uid 998" twice when the name is unknown.
func DataOwner(dir string) (owner, name string) {
	uid, _, err := store.FileOwner(filepath.Join(dir, "meta.db"))
	if err != nil {
		return "another user", "OWNER"
	}
	owner, name = "uid "+strconv.Itoa(uid), "uid "+strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		owner, name = fmt.Sprintf("user %s (uid %d)", u.Username, uid), u.Username
	}
	return owner, name
}
