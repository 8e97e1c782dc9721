package store

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// Fill writes one blob that arrives from elsewhere (a mirror's upstream)
// while clients read it as it arrives. Its bytes go to a file under
// DATA/uploads, hashed on the way, like an upload's; Readers follow that
// file as it grows. Run verifies the size and digest, syncs and places the
// blob as PutBlob does, so nothing is visible under the digest before it is
// verified. A reader sees the same error as Run when the fill fails, so a
// client never receives a complete-looking wrong body.
//
// A Fill is safe for concurrent use by one Run and any number of readers.
type Fill struct {
	s    *Store
	d    Digest
	size int64
	path string
	f    *os.File
	h    hash.Hash

	mu       sync.Mutex
	cond     *sync.Cond
	n        int64 // bytes written so far
	wake     int64 // the least n for which a waiting reader can go on
	verified bool  // all bytes are in and hash to d: readers may end
	done     bool
	err      error
}

// NewFill starts a fill of blob d of the given size (-1 when unknown).
// Call Run exactly once.
func (s *Store) NewFill(d Digest, size int64) (*Fill, error) {
	h := NewHash(d.Algorithm())
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrDigestUnsupported, d.Algorithm())
	}
	id, err := newUploadID()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(UploadsDir(s.dir), id)
	// GC passes over it while it is named here, however slowly the
	// upstream sends.
	s.staged.Store(id, struct{}{})
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		s.staged.Delete(id)
		return nil, fmt.Errorf("create fill file: %w", err)
	}
	w := &Fill{s: s, d: d, size: size, path: path, f: f, h: h, wake: math.MaxInt64}
	w.cond = sync.NewCond(&w.mu)
	return w, nil
}

// Size is the size the fill expects, -1 when unknown.
func (w *Fill) Size() int64 { return w.size }

// Run copies r into the blob, then verifies it and places it, linked in
// repo. It returns the bytes read and the first error: r's, a write's,
// ErrSizeInvalid, ErrDigestMismatch. On error nothing is left behind.
func (w *Fill) Run(repo string, r io.Reader) (n int64, err error) {
	defer func() { w.finish(err) }()
	if n, err = w.copyIn(r); err != nil {
		return n, err
	}
	if w.size >= 0 && n != w.size {
		return n, fmt.Errorf("%w: got %d bytes, want %d", ErrSizeInvalid, n, w.size)
	}
	if got := digestFromHash(w.d.Algorithm(), w.h); got != w.d {
		return n, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, w.d)
	}
	// The readers have the right bytes: they need not wait for the sync
	// and the commit, which only decide whether the store keeps a copy.
	w.mu.Lock()
	w.verified = true
	w.mu.Unlock()
	w.cond.Broadcast()
	if err := w.f.Sync(); err != nil {
		return n, fmt.Errorf("sync fill file: %w", err)
	}
	staged, err := w.s.stageLocalFile(w.path, w.d, n)
	if err != nil {
		return n, err
	}
	if err := w.s.placeBlob(repo, staged); err != nil {
		w.s.blobs.Discard(context.Background(), staged)
		return n, err
	}
	return n, nil
}

// copyIn writes r into the file through CopyHashed, which hashes each
// piece behind its write, so that hashing one piece overlaps reading and
// writing the next; fillWriter publishes each piece to the readers as soon
// as it is written. It returns once every byte is written and hashed.
func (w *Fill) copyIn(r io.Reader) (int64, error) {
	n, readErr, writeErr := CopyHashed(&fillWriter{fill: w}, w.h, r)
	if writeErr != nil {
		return n, writeErr
	}
	return n, readErr
}

// fillWriter writes a fill's file and lets the readers read each piece
// before it is hashed, so that the client's read and hash overlap with
// ours; the last byte still waits for the digest (fillReader.wait).
type fillWriter struct {
	fill *Fill
	n    int64
}

func (fw *fillWriter) Write(p []byte) (int, error) {
	w := fw.fill
	k, err := w.f.Write(p)
	if err != nil {
		return k, fmt.Errorf("write fill file: %w", err)
	}
	fw.n += int64(k)
	w.publish(fw.n)
	if w.size >= 0 && fw.n > w.size {
		return k, fmt.Errorf("%w: more than %d bytes", ErrSizeInvalid, w.size)
	}
	return k, nil
}

// publish lets the readers read n bytes, waking them when one of them
// waits for fewer.
func (w *Fill) publish(n int64) {
	w.mu.Lock()
	w.n = n
	wake := n >= w.wake
	if wake {
		w.wake = math.MaxInt64
	}
	w.mu.Unlock()
	if wake {
		w.cond.Broadcast()
	}
}

// finish records the outcome for the readers and cleans up.
func (w *Fill) finish(err error) {
	w.f.Close()
	if err != nil {
		os.Remove(w.path)
	}
	w.s.staged.Delete(filepath.Base(w.path))
	w.mu.Lock()
	w.done, w.err = true, err
	w.mu.Unlock()
	w.cond.Broadcast()
}

// NewReader returns a reader of the blob from its first byte, which blocks
// until bytes arrive and ends with io.EOF once Run verified them all, or
// with Run's error. When the size is known, the last byte is held back
// until the digest is verified, so a client never receives a whole body
// that is wrong. It fails when the fill has already ended (read the stored
// blob instead). Close it.
//
// Besides Read and WriteTo, the reader has SendTo(io.ReaderFrom), which
// hands dst the file itself, piece by piece as the bytes arrive: a TCP
// connection sends them with sendfile(2), from the page cache, without a
// copy through the process.
func (w *Fill) NewReader() (io.ReadCloser, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, errFillDone
	}
	// Opened while the fill runs, so the file is still at its path; the
	// descriptor stays valid after the rename into place.
	f, err := os.Open(w.path)
	if err != nil {
		return nil, fmt.Errorf("open fill file: %w", err)
	}
	return &fillReader{w: w, f: f}, nil
}

var (
	errFillDone  = errors.New("fill already ended")
	errFillEnded = errors.New("fill ended early") // done without an error or verification: cannot happen
)

// fillReader reads the fill's file through its own descriptor, whose
// offset is always off: Read and SendTo both move it, which is what
// sendfile(2) reads from.
type fillReader struct {
	w   *Fill
	f   *os.File
	off int64
}

// wait blocks until at least atLeast bytes past r.off may be read, or
// fewer when no more can come before the digest is verified, and returns
// how many; io.EOF at the verified end, or the fill's error. Before it
// sleeps it lowers w.wake to the length that would let it go on, so that
// Run wakes the readers only when one of them can use what arrived.
func (r *fillReader) wait(atLeast int64) (int64, error) {
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.err != nil {
			return 0, w.err
		}
		limit, want := w.n, r.off+atLeast
		if !w.verified && w.size > 0 {
			limit = min(limit, w.size-1)
			want = min(want, w.size-1)
		}
		if avail := limit - r.off; avail > 0 && (avail >= atLeast || w.verified || limit >= want) {
			return avail, nil
		}
		if w.verified {
			return 0, io.EOF
		}
		if w.done {
			return 0, errFillEnded
		}
		w.wake = min(w.wake, max(want, r.off+1))
		w.cond.Wait()
	}
}

func (r *fillReader) Read(p []byte) (int, error) {
	avail, err := r.wait(1)
	if err != nil {
		return 0, err
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	k, rerr := r.f.Read(p)
	r.off += int64(k)
	if rerr == io.EOF && k > 0 {
		rerr = nil
	}
	return k, rerr
}

func (r *fillReader) Close() error { return r.f.Close() }

// WriteTo copies the blob to dst in large pieces as it arrives; io.Copy
// (and fasthttp's response writer) use it instead of 4 KiB reads.
func (r *fillReader) WriteTo(dst io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			k, werr := dst.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// sendPiece is the least SendTo hands the connection at once while the
// fill goes on: one wake-up and one sendfile call per half MiB, not per
// piece of the upstream's socket.
const sendPiece = 512 << 10

// SendTo copies the blob to dst as it arrives, handing dst each piece as
// an *io.LimitedReader over the file at r's offset (see NewReader).
func (r *fillReader) SendTo(dst io.ReaderFrom) (int64, error) {
	var total int64
	for {
		avail, err := r.wait(sendPiece)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := dst.ReadFrom(&io.LimitedReader{R: r.f, N: avail})
		r.off += n
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrNoProgress // the file is shorter than the fill says: cannot happen
		}
	}
}
