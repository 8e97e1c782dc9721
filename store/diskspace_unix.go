//go:build linux || darwin || freebsd

package store

import (
	"fmt"
	"syscall"
)

// DiskSpace returns the space of the filesystem that holds DATA (blobs,
// uploads and meta.db share it).
func (s *Store) DiskSpace() (DiskSpace, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fs); err != nil {
		return DiskSpace{}, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return DiskSpace{Total: int64(fs.Blocks) * int64(fs.Bsize), Free: int64(fs.Bavail) * int64(fs.Bsize)}, nil
}
