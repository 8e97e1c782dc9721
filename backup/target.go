package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-registry/berth/store"
)

// Errors of a restore's checks on the data directory.
var (
	ErrInUse    = errors.New("the data directory is in use by a running berth")
	ErrNotEmpty = errors.New("the data directory is not empty")
)

// target is the data directory a restore fills: checked, and locked
// against a server starting on it while the restore runs.
type target struct {
	path   string      // absolute, symlinks resolved
	exists bool        // it exists
	full   bool        // it exists and holds something
	mode   fs.FileMode // its permissions, or those store.Open gives a new one
	unlock func()      // releases the shared lock on its meta.db; nil when not taken
	kept   []string    // what replaceWith kept of the old directory
}

// openTarget checks the data directory dir: it must be absent or empty
// unless force, and no process may hold its meta.db. Its parent must exist:
// the restore works beside it. Call release when done.
func openTarget(dir string, force bool) (*target, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// Resolve a symlinked DATA, so the temporary directory is made beside
	// the real one and the final rename replaces it, not the link.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s: %w", dir, err)
	}
	t := &target{path: abs, mode: 0o755}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the parent of %s is not a directory: create it first", abs)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is not a directory", abs)
	}
	t.exists = true
	t.mode = fi.Mode().Perm()
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	t.full = len(entries) > 0
	if t.full && !force {
		return nil, fmt.Errorf("%w: %s holds %d entries; restore into an empty or new directory, or give --force to replace what it holds",
			ErrNotEmpty, abs, len(entries))
	}
	if err := t.takeLock(); err != nil {
		return nil, err
	}
	return t, nil
}

// takeLock takes a shared lock on DATA/meta.db (store.LockShared), which
// conflicts with the exclusive one every berth process that opens DATA
// holds.
func (t *target) takeLock() error {
	unlock, err := store.LockShared(t.path)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: %s; stop the server (or the other berth command) first", ErrInUse, t.path)
	}
	if err != nil {
		return err
	}
	t.unlock = unlock
	return nil
}

func (t *target) release() {
	if t.unlock != nil {
		t.unlock()
		t.unlock = nil
	}
}

// tempDir makes the directory the restore fills, beside DATA so that the
// final rename stays on one filesystem.
func (t *target) tempDir() (string, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(t.path), "."+filepath.Base(t.path)+".restore-")
	if err != nil {
		return "", fmt.Errorf("create a temporary directory beside %s: %w", t.path, err)
	}
	return tmp, nil
}

// replaceWith makes tmp the data directory. An absent DATA is replaced in
// one rename, an empty one is removed first (os.Rename refuses to replace a
// directory). A full one is moved aside first, and moved back if tmp cannot
// take its place; once tmp is in place the old one is removed, and leftover
// names it if that failed.
func (t *target) replaceWith(tmp string) (leftover string, err error) {
	if err := os.Chmod(tmp, t.mode); err != nil {
		return "", err
	}
	parent := filepath.Dir(t.path)
	if !t.full {
		// A server that started in the empty DATA meanwhile has put
		// meta.db there, and this Remove fails: DATA stays its.
		if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", renameError(t.path, err)
		}
		if err := os.Rename(tmp, t.path); err != nil {
			os.Mkdir(t.path, t.mode) // as it was, if it was there
			return "", renameError(t.path, err)
		}
		return "", store.SyncDir(parent)
	}
	aside, err := freeName(parent, "."+filepath.Base(t.path)+".replaced-")
	if err != nil {
		return "", err
	}
	if err := os.Rename(t.path, aside); err != nil {
		return "", renameError(t.path, err)
	}
	if err := os.Rename(tmp, t.path); err != nil {
		if back := os.Rename(aside, t.path); back != nil {
			return "", fmt.Errorf("%w; moving the old data back failed too (%v): it is in %s", renameError(t.path, err), back, aside)
		}
		return "", renameError(t.path, err)
	}
	if err := store.SyncDir(parent); err != nil {
		return "", err
	}
	t.release()
	if t.kept, err = keepFromOld(aside, t.path); err != nil {
		// The old directory stays where it is, with what it still holds.
		return aside, err
	}
	if err := os.RemoveAll(aside); err != nil {
		return aside, nil
	}
	return "", nil
}

// replacedByRestore are the names of DATA that a restore brings back from
// the archive, or that mean nothing for the restored registry: the old
// ones go. initial-admin-password holds a password of the replaced users.
var replacedByRestore = map[string]bool{
	"meta.db": true, "blobs": true, "uploads": true, "control.sock": true, "initial-admin-password": true,
}

// keepFromOld moves from the replaced data directory old into the restored
// one, data, whatever a backup does not hold, so that --force destroys
// nothing an archive cannot give back: DATA/quarantine, files of the
// operator's, and DATA/tls when the archive brought none. When the archive
// brought its own DATA/tls and the old one differs, the old one is kept as
// tls.replaced-<time>. It returns what it kept, as names in data.
func keepFromOld(old, data string) ([]string, error) {
	entries, err := os.ReadDir(old)
	if err != nil {
		return nil, fmt.Errorf("read the replaced data directory: %w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var kept []string
	for _, e := range entries {
		name := e.Name()
		if replacedByRestore[name] {
			continue
		}
		dst := name
		if _, err := os.Lstat(filepath.Join(data, name)); err == nil {
			if name == tlsDir && sameFiles(filepath.Join(old, name), filepath.Join(data, name)) {
				continue
			}
			dst = name + ".replaced-" + stamp
		}
		if err := os.Rename(filepath.Join(old, name), filepath.Join(data, dst)); err != nil {
			return kept, fmt.Errorf("keep %s of the replaced data directory: %w", name, err)
		}
		kept = append(kept, dst)
	}
	if len(kept) > 0 {
		return kept, store.SyncDir(data)
	}
	return kept, nil
}

// sameFiles reports whether directories a and b hold the same files of
// DATA/tls with the same bytes.
func sameFiles(a, b string) bool {
	for _, name := range store.TLSFileNames {
		x, errA := os.ReadFile(filepath.Join(a, name))
		y, errB := os.ReadFile(filepath.Join(b, name))
		if errors.Is(errA, fs.ErrNotExist) != errors.Is(errB, fs.ErrNotExist) || string(x) != string(y) {
			return false
		}
	}
	extra := func(dir string) bool {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !slices.Contains(store.TLSFileNames, e.Name()) {
				return true
			}
		}
		return false
	}
	return !extra(a) && !extra(b)
}

// freeName returns a path in dir, starting with prefix, that nothing uses.
func freeName(dir, prefix string) (string, error) {
	for range 10 {
		id, err := newID()
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, prefix+id[:12])
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no free name for the old data beside %s", dir)
}

func renameError(path string, err error) error {
	return fmt.Errorf("put the restored data in place at %s: %w (if it is a mount point, restore into a directory inside it)", path, err)
}
