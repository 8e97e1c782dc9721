package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// dirBlobs is the BlobStore of the sharded directory DATA/blobs, with upload
// sessions as files in DATA/uploads (layout.go). Its durability is place.go's
// sequence: written under DATA/uploads, fsynced, renamed into the shard, the
// shard fsynced.
type dirBlobs struct {
	dir string // the data directory
}

// DirBlobs returns the BlobStore of the data directory dir's blobs folder,
// the default backend.
func DirBlobs(dir string) BlobStore { return &dirBlobs{dir: dir} }

var _ BlobStore = (*dirBlobs)(nil)

// DirLocation is the Location of the directory backend.
const DirLocation = "dir"

func (b *dirBlobs) Location() string { return DirLocation }

func (b *dirBlobs) Open(ctx context.Context, ref BlobRef, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(BlobPathIn(b.dir, ref.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no file", ErrBlobUnknown, ref.Digest)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", ref.Digest, err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek blob %s: %w", ref.Digest, err)
		}
	}
	if n < 0 {
		return f, nil // a bare *os.File: the HTTP layer can sendfile it
	}
	return &limitedFile{Reader: io.LimitReader(f, n), f: f}, nil
}

// limitedFile is a range of an open blob file that closes the file.
type limitedFile struct {
	io.Reader
	f *os.File
}

func (r *limitedFile) Close() error { return r.f.Close() }

func (b *dirBlobs) Stat(ctx context.Context, ref BlobRef) (int64, error) {
	fi, err := os.Stat(BlobPathIn(b.dir, ref.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s has no file", ErrBlobUnknown, ref.Digest)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", ref.Digest, err)
	}
	return fi.Size(), nil
}

func (b *dirBlobs) Delete(ctx context.Context, ref BlobRef) error {
	path := BlobPathIn(b.dir, ref.Digest)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

func (b *dirBlobs) Walk(ctx context.Context, fn func(StoredObject) error) error {
	root := BlobsDir(b.dir)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		d, ok := blobAtPath(b.dir, path)
		if !ok {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed while we walked
		}
		return fn(StoredObject{Ref: BlobRef{Digest: d}, Size: info.Size(), Modified: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("walk blob files: %w", err)
	}
	return nil
}

// blobAtPath returns the digest whose file in dir is path, if it is one.
func blobAtPath(dir, path string) (Digest, bool) {
	alg := filepath.Base(filepath.Dir(filepath.Dir(path)))
	d, err := ParseDigest(alg + ":" + filepath.Base(path))
	if err != nil || BlobPathIn(dir, d) != path {
		return "", false
	}
	return d, true
}

func (b *dirBlobs) Write(ctx context.Context, d Digest, size int64, r io.Reader) (StagedBlob, error) {
	tmp, n, err := writeVerified(b.dir, d, size, r)
	if err != nil {
		return StagedBlob{}, err
	}
	return StagedBlob{Digest: d, Size: n, tmp: tmp}, nil
}

func (b *dirBlobs) sessionPath(id string) string { return filepath.Join(UploadsDir(b.dir), id) }

func (b *dirBlobs) StartSession(ctx context.Context, id string) ([]byte, error) {
	f, err := os.OpenFile(b.sessionPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	return nil, f.Close()
}

func (b *dirBlobs) AppendSession(ctx context.Context, sess Session) (SessionWriter, error) {
	f, err := os.OpenFile(b.sessionPath(sess.ID), os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open upload file: %w", err)
	}
	// Drop anything past the recorded offset: the tail of a chunk whose
	// write failed before it was recorded.
	if err := f.Truncate(sess.Offset); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate upload file: %w", err)
	}
	if _, err := f.Seek(sess.Offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek upload file: %w", err)
	}
	return &dirSessionWriter{f: f, w: newWritebackFile(f, sess.Offset), offset: sess.Offset}, nil
}

// dirSessionWriter appends to a session file.
type dirSessionWriter struct {
	f      *os.File
	w      *writebackFile // f, written back while the chunk streams in
	offset int64          // the recorded offset, where Abort cuts back to
}

func (w *dirSessionWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = fmt.Errorf("write upload file: %w", err)
	}
	return n, err
}

func (w *dirSessionWriter) Commit() ([]byte, error) {
	defer w.f.Close()
	if err := w.f.Sync(); err != nil {
		w.f.Truncate(w.offset)
		return nil, fmt.Errorf("sync upload file: %w", err)
	}
	return nil, nil
}

// Abort cuts the session file back to the recorded offset: on a full disk
// the bytes of the failed chunk are given back at once, not when the
// session is next used or collected.
func (w *dirSessionWriter) Abort() error {
	defer w.f.Close()
	return w.f.Truncate(w.offset)
}

func (b *dirBlobs) FinishSession(ctx context.Context, sess Session, d Digest) (StagedBlob, error) {
	return StagedBlob{Digest: d, Size: sess.Offset, tmp: b.sessionPath(sess.ID)}, nil
}

func (b *dirBlobs) AbortSession(ctx context.Context, sess Session) error {
	if err := os.Remove(b.sessionPath(sess.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove upload file: %w", err)
	}
	return nil
}

func (b *dirBlobs) OpenSession(ctx context.Context, sess Session) (io.ReadCloser, error) {
	f, err := os.Open(b.sessionPath(sess.ID))
	if err != nil {
		return nil, fmt.Errorf("open upload file: %w", err)
	}
	return &limitedFile{Reader: io.LimitReader(f, sess.Offset), f: f}, nil
}

func (b *dirBlobs) Discard(ctx context.Context, s StagedBlob) {
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}

func (b *dirBlobs) place(s StagedBlob) (string, error) {
	return renameIntoPlace(b.dir, s.tmp, s.Digest)
}

func (b *dirBlobs) syncPlaced(dir string) error { return SyncDir(dir) }
