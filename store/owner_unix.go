//go:build unix

package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FileOwner returns the uid and gid that own path.
func FileOwner(path string) (uid, gid int, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return os.Getuid(), os.Getgid(), nil
	}
	return int(st.Uid), int(st.Gid), nil
}

// OwnLike gives paths, and everything under those that are directories,
// the owner of ref (the data directory), when this process runs as root and
// ref belongs to someone else. A maintenance command run as root while the
// service is stopped (`tls init`, `verify --repair`, `restore`) would
// otherwise leave files the service's user cannot read. Anyone but root
// creates files as themselves and cannot give them away, so for them it
// does nothing.
func OwnLike(ref string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := FileOwner(ref)
	if err != nil || uid == 0 {
		return err
	}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
