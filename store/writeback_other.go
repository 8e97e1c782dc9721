//go:build !linux

package store

import "os"

// startWriteback does nothing where sync_file_range is missing: the fsync
// before the commit writes everything.
func startWriteback(f *os.File, off, n int64) {}
