package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The one way a blob file reaches its final path (docs: store/doc.go,
// "Durability"): written under DATA/uploads (the same filesystem, so the
// rename is atomic), hashed while written, fsynced, compared with its digest
// and size, and only then renamed into place, with every directory created
// on the way fsynced in its parent and the shard fsynced after the rename.
// Uploads, restore, and whatever else brings blobs in (a mirror, an import)
// go through here.

// WriteBlob stores the content of r as blob d in the data directory dir,
// which need not be open: a restore fills a directory before it opens it.
// size is the expected length, or -1 when unknown. A body of another length
// fails with ErrSizeInvalid, one that does not hash to d with
// ErrDigestMismatch, and then nothing is left behind. When the file is
// already in place, the new copy is dropped. It records nothing: an open
// store records the blob itself (PutBlob). It returns the bytes read.
func WriteBlob(dir string, d Digest, size int64, r io.Reader) (int64, error) {
	tmp, n, err := writeVerified(dir, d, size, r)
	if err != nil {
		return n, err
	}
	if err := moveIntoPlace(dir, tmp, d); err != nil {
		os.Remove(tmp)
		return n, err
	}
	return n, nil
}

// writeVerified writes r to a new file under dir's uploads, hashing it on
// the way, checks its size and digest and syncs it. It returns the file's
// path; on error the file is gone.
func writeVerified(dir string, d Digest, size int64, r io.Reader) (tmp string, n int64, err error) {
	h := NewHash(d.Algorithm())
	if h == nil {
		return "", 0, fmt.Errorf("%w: %q", ErrDigestUnsupported, d.Algorithm())
	}
	id, err := newUploadID()
	if err != nil {
		return "", 0, err
	}
	path := filepath.Join(UploadsDir(dir), id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("create upload file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	n, readErr, writeErr := CopyHashed(newWritebackFile(f, 0), h, r)
	switch {
	case writeErr != nil:
		return "", n, fmt.Errorf("write upload file: %w", writeErr)
	case readErr != nil:
		return "", n, readErr
	case size >= 0 && n != size:
		return "", n, fmt.Errorf("%w: got %d bytes, want %d", ErrSizeInvalid, n, size)
	}
	if got := digestFromHash(d.Algorithm(), h); got != d {
		return "", n, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, d)
	}
	if err := f.Sync(); err != nil {
		return "", n, fmt.Errorf("sync upload file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", n, fmt.Errorf("close upload file: %w", err)
	}
	return path, n, nil
}

// moveIntoPlace renames the verified file tmp to the final path of d in
// dir and syncs its shard, or drops tmp when that path already holds the
// blob (content addressed: the same name is the same bytes). An open store
// calls it under the digest lock.
func moveIntoPlace(dir, tmp string, d Digest) error {
	shard, err := renameIntoPlace(dir, tmp, d)
	if err != nil || shard == "" {
		return err
	}
	return SyncDir(shard)
}

// renameIntoPlace is moveIntoPlace without the final sync, for callers that
// place several blobs and sync each shard once: it returns the shard to
// sync, or "" when tmp was dropped.
func renameIntoPlace(dir, tmp string, d Digest) (shard string, err error) {
	final := BlobPathIn(dir, d)
	if _, err := os.Stat(final); err == nil {
		os.Remove(tmp)
		return "", nil
	}
	shard = filepath.Dir(final)
	if err := mkdirSynced(shard); err != nil {
		return "", fmt.Errorf("create shard directory: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("rename blob %s: %w", d, err)
	}
	return shard, nil
}

// mkdirSynced creates dir and its missing parents like os.MkdirAll, and
// fsyncs the parent of each directory it creates: a new directory's entry is
// data of its parent, which some filesystems (XFS, btrfs, ext4 without
// data=ordered) do not order before a later rename into it, so without the
// fsync a power cut could lose a committed blob with its new shard.
func mkdirSynced(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Also when another goroutine created it a moment ago: its fsync may not
	// have happened yet, and this caller is about to rely on the entry.
	return SyncDir(parent)
}

// SyncDir makes a rename or create in dir durable by fsyncing the
// directory itself.
func SyncDir(dir string) error {
	syncedDir(dir)
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// syncedDir is called with every directory SyncDir syncs; tests replace it
// to see that the directories a placement creates are synced in their
// parents. It does nothing otherwise.
var syncedDir = func(string) {}

// WriteFileAtomic lets write fill a temporary file beside path, then syncs
// it, renames it to path and syncs the directory, so that path holds either
// its old content or the whole new one, also after a crash. The file gets
// mode (before any byte is written: a key is never readable by others). On
// any error the temporary file is removed and path is untouched.
func WriteFileAtomic(path string, mode os.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	// In the same directory, so the rename does not cross filesystems.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", f.Name(), path, err)
	}
	return SyncDir(dir)
}
