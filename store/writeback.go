package store

import "os"

// writebackEvery is how many bytes of a blob file being written may wait in
// the page cache before the kernel is asked to start writing them out.
const writebackEvery = 8 << 20

// writebackFile is a file written front to back (a blob or an upload
// session) whose bytes the disk writes while the rest still streams in.
// Without it the kernel writes a large blob back only when its dirty pages
// age or the fsync before the 201 asks, and that fsync then waits for the
// whole blob: 0.6-0.8 s per GiB on this project's test disk, after the last
// byte. The fsync stays exactly where it is (durability is unchanged); it
// only finds little left to do.
type writebackFile struct {
	*os.File
	off     int64 // the file offset of the next write
	started int64 // writeback was asked for up to here
}

// newWritebackFile wraps f, whose next write goes to offset off.
func newWritebackFile(f *os.File, off int64) *writebackFile {
	return &writebackFile{File: f, off: off, started: off}
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackEvery {
		// Advice only: a failure shows again in the fsync that decides.
		startWriteback(w.File, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}
