package store

// DiskSpace is the size of the filesystem that holds the data directory
// and what is left of it.
type DiskSpace struct {
	Total int64 // bytes of the filesystem
	Free  int64 // bytes an unprivileged writer may still use
}
