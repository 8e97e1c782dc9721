//go:build !(linux || darwin || freebsd)

package store

import "errors"

// DiskSpace reports that this system's filesystem size is not known to
// berth: statfs(2) is what the supported systems answer it with.
func (s *Store) DiskSpace() (DiskSpace, error) {
	return DiskSpace{}, errors.New("disk space is not available on this system")
}
