package backup

import (
	"archive/tar"
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-registry/berth/store"
)

// Options adjust Write.
type Options struct {
	// Base is the header of the backup this one follows; nil makes a full
	// backup. The new archive holds only the blobs Base does not list.
	Base *Header
	// BerthVersion is recorded in the header.
	BerthVersion string
	// Progress, when not nil, is called as the archive is written, with the
	// bytes done and the total (meta.db and blobs, before compression). It
	// runs on the writing goroutine and must return quickly.
	Progress func(done, total int64)
}

// copyBufferSize is the chunk in which blob files are copied.
const copyBufferSize = 256 << 10

// Write writes a backup of s to w: a consistent snapshot of meta.db and
// every blob it records (or, with opts.Base, those the base does not hold),
// and returns its header. It is safe while s serves pushes, deletes and
// garbage collection: see the package doc. Blobs stream from their files,
// hashed on the way, so a blob that rotted on disk fails the backup instead
// of poisoning it. Cancelling ctx stops the copy with ctx's error. On error
// w holds a partial archive that a restore refuses.
func Write(ctx context.Context, s *store.Store, w io.Writer, opts Options) (Header, error) {
	id, err := newID()
	if err != nil {
		return Header{}, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return Header{}, fmt.Errorf("start zstd: %w", err)
	}
	defer zw.Close() // releases the encoder's goroutines; a second Close is harmless
	pw := &progressWriter{report: opts.Progress}
	tw := tar.NewWriter(zw)
	tlsFiles, err := readTLS(s.Dir())
	if err != nil {
		return Header{}, err
	}
	var hdr Header
	unpin, err := s.Snapshot(func(sn *store.Snapshot) error {
		hdr = newHeader(id, opts, sn.MetaSize(), sn.Blobs)
		for _, f := range tlsFiles {
			hdr.TLS = append(hdr.TLS, TLSFile{Name: f.name, Size: int64(len(f.data))})
		}
		pw.total = hdr.Bytes()
		pw.add(0)
		if err := writeHeader(tw, hdr); err != nil {
			return err
		}
		return writeMeta(tw, pw, sn, hdr.Created)
	})
	if err != nil {
		return hdr, err
	}
	defer unpin()
	for _, f := range tlsFiles {
		if err := writeTLSFile(tw, f, hdr.Created); err != nil {
			return hdr, err
		}
	}
	buf := make([]byte, copyBufferSize)
	for _, b := range hdr.Blobs {
		if err := copyBlob(ctx, tw, pw, s, b, buf); err != nil {
			return hdr, err
		}
	}
	if err := tw.Close(); err != nil {
		return hdr, fmt.Errorf("finish tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return hdr, fmt.Errorf("finish zstd: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return hdr, fmt.Errorf("write backup: %w", err)
	}
	return hdr, nil
}

// newHeader describes the snapshot: the blobs go to Blobs unless the base
// lists them (with the same size), then to Inherited.
func newHeader(id string, opts Options, metaSize int64, blobs []store.BlobInfo) Header {
	h := Header{
		Format: Format, Version: FormatVersion, Berth: opts.BerthVersion,
		Created: time.Now().UTC(), ID: id, MetaSize: metaSize, Blobs: []Blob{},
	}
	var held map[store.Digest]int64
	if opts.Base != nil {
		h.Base = opts.Base.ID
		held = opts.Base.Holds()
	}
	for _, b := range blobs {
		entry := Blob{Digest: b.Digest, Size: b.Size}
		if size, ok := held[b.Digest]; ok && size == b.Size {
			h.Inherited = append(h.Inherited, entry)
		} else {
			h.Blobs = append(h.Blobs, entry)
		}
	}
	return h
}

func writeHeader(tw *tar.Writer, h Header) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	if err := tw.WriteHeader(fileHeader(headerName, int64(len(b)), h.Created)); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// writeMeta copies meta.db as the snapshot sees it.
func writeMeta(tw *tar.Writer, pw *progressWriter, sn *store.Snapshot, at time.Time) error {
	if err := tw.WriteHeader(fileHeader(metaName, sn.MetaSize(), at)); err != nil {
		return fmt.Errorf("write meta.db: %w", err)
	}
	pw.w = tw
	if _, err := sn.WriteMeta(pw); err != nil {
		return fmt.Errorf("copy meta.db: %w", err)
	}
	return nil
}

// copyBlob copies the file of b into the archive, hashing it on the way.
func copyBlob(ctx context.Context, tw *tar.Writer, pw *progressWriter, s *store.Store, b Blob, buf []byte) error {
	size, err := s.StoredBlobSize(ctx, b.Digest)
	if errors.Is(err, store.ErrBlobUnknown) {
		return fmt.Errorf("blob %s has a record but no file: run `berth verify --repair`, then back up again", b.Digest)
	}
	if err != nil {
		return fmt.Errorf("open blob %s: %w", b.Digest, err)
	}
	if size != b.Size {
		return fmt.Errorf("blob %s: the file does not have the recorded %d bytes: run `berth verify --repair`, then back up again", b.Digest, b.Size)
	}
	f, err := s.OpenStoredBlob(ctx, b.Digest)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", b.Digest, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(fileHeader(Entry{Kind: EntryBlob, Digest: b.Digest}.Name(), b.Size, time.Time{})); err != nil {
		return fmt.Errorf("write blob %s: %w", b.Digest, err)
	}
	h := store.NewHash(b.Digest.Algorithm())
	pw.w = tw
	n, readErr, writeErr := store.CopyHashed(pw, h, &ctxReader{ctx, f})
	if err := cmp.Or(writeErr, readErr); err != nil {
		return fmt.Errorf("copy blob %s: %w", b.Digest, err)
	}
	if got := store.Digest(fmt.Sprintf("%s:%x", b.Digest.Algorithm(), h.Sum(nil))); n != b.Size || got != b.Digest {
		return fmt.Errorf("blob %s is corrupt on disk (%d bytes hashing to %s): run `berth verify --repair`, then back up again", b.Digest, n, got)
	}
	return nil
}

// tlsFile is a file of DATA/tls, read whole: it is a few kilobytes.
type tlsFile struct {
	name string
	data []byte
}

// readTLS reads the files of DATA/tls there are. A backup carries them:
// without the CA key, a restored registry would need a new CA that every
// client must trust again.
func readTLS(dataDir string) ([]tlsFile, error) {
	var out []tlsFile
	for _, name := range store.TLSFileNames {
		path := filepath.Join(dataDir, store.TLSDirName, name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() > store.MaxTLSFileSize {
			return nil, fmt.Errorf("%s is not a certificate or key file (a regular file of at most %d bytes)", path, store.MaxTLSFileSize)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		out = append(out, tlsFile{name: name, data: data})
	}
	return out, nil
}

func writeTLSFile(tw *tar.Writer, f tlsFile, at time.Time) error {
	name := Entry{Kind: EntryTLS, File: f.name}.Name()
	if err := tw.WriteHeader(fileHeader(name, int64(len(f.data)), at)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(f.data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// fileHeader is the tar header of a regular file. Blobs get the zero time
// (the epoch): their content, not their age, is what matters.
func fileHeader(name string, size int64, at time.Time) *tar.Header {
	if at.IsZero() {
		at = time.Unix(0, 0)
	}
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: at.Truncate(time.Second)}
}

// progressWriter counts the bytes written through it.
type progressWriter struct {
	w           io.Writer
	done, total int64
	report      func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.add(int64(n))
	return n, err
}

func (p *progressWriter) add(n int64) {
	p.done += n
	if p.report != nil {
		p.report(p.done, p.total)
	}
}

// ctxReader fails reads once ctx is done, so a long copy stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
