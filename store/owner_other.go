//go:build !unix

package store

import "os"

// FileOwner returns the uid and gid of this process: files have no unix
// owner here.
func FileOwner(string) (uid, gid int, err error) { return os.Getuid(), os.Getgid(), nil }

// OwnLike does nothing where files have no unix owner.
func OwnLike(string, ...string) error { return nil }
