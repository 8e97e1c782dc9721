package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-registry/berth/store"
)

// Input is one backup stream for Restore.
type Input struct {
	Name string // for messages: the file name, or "stdin"
	R    io.Reader
}

// RestoreOptions adjust Restore.
type RestoreOptions struct {
	// Force replaces a data directory that is not empty. The old one is
	// moved aside and removed only once the restored one is in its place.
	Force bool
	// CheckRule, when not nil, checks each access rule of the restored
	// meta.db (server/auth's ValidateRule): a rule the server cannot compile
	// would make it refuse every request.
	CheckRule func(store.Rule) error
	// Blobs is where the restored blobs go (store.OpenBlobStore): nil or
	// the directory's writes them into DATA/blobs; an object store's (S3)
	// writes each as an object there, and the restored meta.db records
	// that store. Whatever store the backup was taken from.
	Blobs store.BlobStore
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Headers        []Header // of the inputs, in order
	Blobs          int      // blobs in the restored store
	Bytes          int64    // their bytes
	DroppedUploads int      // upload sessions the snapshot had, whose data no backup holds
	Replaced       bool     // the data directory held something, now replaced
	// Leftover is where the old data directory is when it could not be
	// removed after the restore; empty normally.
	Leftover string
	// Kept are the names in the data directory that Force kept from the
	// replaced one, because no backup holds them (DATA/quarantine, an old
	// DATA/tls the archive did not replace, files of the operator's).
	Kept []string
	// TLS reports whether the restored DATA/tls came from the archive.
	TLS bool
}

// ErrChain is wrapped by the errors for inputs that are not one backup
// chain in order.
var ErrChain = errors.New("the inputs are not one backup chain in order")

// Restore restores the backups inputs, a full backup followed by any of its
// incrementals in the order they were taken, into the data directory dir,
// which must be absent or empty unless opts.Force. It fills a temporary
// directory beside dir, hashing every blob as it is written, checks the
// result, and only then puts it in dir's place. Any failure — a damaged or
// hostile archive, inputs out of order, a server holding dir — leaves dir
// as it was and removes the temporary directory; errors name the input and,
// for a refused entry, the entry. dir ends up holding the snapshot of the
// last input. Upload sessions in progress at the snapshot are dropped: no
// backup holds their data.
func Restore(ctx context.Context, dir string, inputs []Input, opts RestoreOptions) (res RestoreResult, err error) {
	if len(inputs) == 0 {
		return res, errors.New("restore needs at least one backup")
	}
	t, err := openTarget(dir, opts.Force)
	if err != nil {
		return res, err
	}
	defer t.release()
	tmp, err := t.tempDir()
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	r := &restorer{ctx: ctx, dir: tmp, checkRule: opts.CheckRule, have: map[store.Digest]int64{}, dirs: map[string]bool{}, buf: make([]byte, copyBufferSize)}
	if opts.Blobs != nil && opts.Blobs.Location() != store.DirLocation {
		r.objects, r.staged = opts.Blobs, map[store.Digest]store.StagedBlob{}
		defer func() {
			if err != nil {
				r.dropObjects(r.staged)
			}
		}()
	}
	if err := os.MkdirAll(store.UploadsDir(tmp), 0o755); err != nil {
		return res, err
	}
	var prev *Header
	for _, in := range inputs {
		h, err := r.restoreArchive(in, prev)
		if err != nil {
			return res, err
		}
		res.Headers = append(res.Headers, h)
		prev = &res.Headers[len(res.Headers)-1]
	}
	if res.Blobs, res.Bytes, res.DroppedUploads, err = r.finish(inputs[len(inputs)-1].Name, *prev); err != nil {
		return res, err
	}
	if t.exists {
		// A restore run as root must leave files the service's user can
		// open: they take the owner of the data directory they replace.
		if err := store.OwnLike(t.path, tmp); err != nil {
			return res, fmt.Errorf("give the restored files the owner of %s: %w", t.path, err)
		}
	}
	res.Replaced = t.full
	res.TLS = len(prev.TLS) > 0 || dirExists(filepath.Join(tmp, tlsDir))
	res.Leftover, err = t.replaceWith(tmp)
	res.Kept = t.kept
	return res, err
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// checkChain checks that h may follow prev (nil: h is the first input).
func checkChain(name string, h Header, prev *Header) error {
	switch {
	case prev == nil && h.Incremental():
		return fmt.Errorf("%w: %s is an incremental backup (it follows backup %s); give the full backup first, then every incremental up to this one, in order",
			ErrChain, name, h.Base)
	case prev != nil && !h.Incremental():
		return fmt.Errorf("%w: %s is a full backup; only the first input may be one", ErrChain, name)
	case prev != nil && h.Base != prev.ID:
		return fmt.Errorf("%w: %s follows backup %s, but the input before it is backup %s", ErrChain, name, h.Base, prev.ID)
	}
	return nil
}

// restorer fills the temporary data directory.
type restorer struct {
	ctx  context.Context
	dir  string                 // the temporary data directory
	have map[store.Digest]int64 // blobs written so far, with their sizes
	dirs map[string]bool        // directories to sync before the swap
	buf  []byte

	checkRule func(store.Rule) error // see RestoreOptions.CheckRule

	// objects is the object store the blobs go to (nil: DATA/blobs), and
	// staged the objects written there so far.
	objects store.BlobStore
	staged  map[store.Digest]store.StagedBlob
}

// restoreArchive reads one input into the directory: its meta.db replaces
// the previous input's, its blobs join those already written.
func (r *restorer) restoreArchive(in Input, prev *Header) (Header, error) {
	a, err := openArchive(in.R, in.Name, 0)
	if err != nil {
		return Header{}, err
	}
	defer a.close()
	h, err := a.readHeader()
	if err != nil {
		return h, err
	}
	if err := checkChain(in.Name, h, prev); err != nil {
		return h, err
	}
	for _, b := range h.Inherited {
		if size, ok := r.have[b.Digest]; !ok || size != b.Size {
			return h, fmt.Errorf("%w: %s needs blob %s from an earlier backup of its chain, and the inputs before it do not hold it", ErrChain, in.Name, b.Digest)
		}
	}
	if err := r.readEntries(a, h); err != nil {
		return h, err
	}
	return h, a.finish()
}

// readEntries writes every entry after the header, checking each against
// the header's promises, and that none of them is missing.
func (r *restorer) readEntries(a *archive, h Header) error {
	want := make(map[store.Digest]int64, len(h.Blobs))
	for _, b := range h.Blobs {
		want[b.Digest] = b.Size
	}
	got := make(map[store.Digest]bool, len(h.Blobs))
	meta := false
	tlsWant := map[string]int64{}
	for _, f := range h.TLS {
		tlsWant[f.Name] = f.Size
	}
	if len(h.TLS) > 0 {
		// This archive's DATA/tls replaces an earlier input's, whole.
		if err := os.RemoveAll(filepath.Join(r.dir, tlsDir)); err != nil {
			return err
		}
	}
	for {
		e, th, err := a.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch e.Kind {
		case EntryHeader:
			return fmt.Errorf("%s: a second %s", a.name, headerName)
		case EntryMeta:
			if meta {
				return fmt.Errorf("%s: a second %s", a.name, metaName)
			}
			if th.Size != h.MetaSize {
				return fmt.Errorf("%s: meta.db has %d bytes, the header says %d", a.name, th.Size, h.MetaSize)
			}
			if err := r.writeMeta(a); err != nil {
				return err
			}
			meta = true
		case EntryTLS:
			size, listed := tlsWant[e.File]
			switch {
			case !listed:
				return fmt.Errorf("%s: entry %q is a file its header does not list (or it comes twice)", a.name, th.Name)
			case th.Size != size:
				return fmt.Errorf("%s: entry %q has %d bytes, the header says %d", a.name, th.Name, th.Size, size)
			}
			if err := r.writeTLS(a, e.File, size); err != nil {
				return err
			}
			delete(tlsWant, e.File)
		case EntryBlob:
			size, listed := want[e.Digest]
			switch {
			case got[e.Digest]:
				return fmt.Errorf("%s: entry %q comes twice", a.name, th.Name)
			case !listed:
				return fmt.Errorf("%s: entry %q is a blob its header does not list", a.name, th.Name)
			case th.Size != size:
				return fmt.Errorf("%s: entry %q has %d bytes, the header says %d", a.name, th.Name, th.Size, size)
			}
			if err := r.writeBlob(a, th.Name, e.Digest, size); err != nil {
				return err
			}
			got[e.Digest] = true
		}
	}
	if !meta {
		return fmt.Errorf("%s is truncated: it ends before meta.db", a.name)
	}
	for _, f := range h.TLS {
		if _, missing := tlsWant[f.Name]; missing {
			return fmt.Errorf("%s is truncated: tls/%s, which its header lists, is missing", a.name, f.Name)
		}
	}
	if len(got) < len(want) {
		for _, b := range h.Blobs {
			if !got[b.Digest] {
				return fmt.Errorf("%s is truncated: %d of the blobs its header lists are missing, %s the first", a.name, len(want)-len(got), b.Digest)
			}
		}
	}
	return nil
}

func (r *restorer) writeMeta(a *archive) error {
	path := store.MetaPath(r.dir)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create meta.db: %w", err)
	}
	defer f.Close()
	if _, err := io.CopyBuffer(f, &ctxReader{r.ctx, a.read()}, r.buf); err != nil {
		return fmt.Errorf("write meta.db: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync meta.db: %w", err)
	}
	return f.Close()
}

// writeTLS writes the current entry as DATA/tls/name, a key readable by
// its owner only.
func (r *restorer) writeTLS(a *archive, name string, size int64) error {
	dir := store.TLSDir(r.dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(a.read(), size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("%s: tls/%s has %d bytes, the header says %d", a.name, name, len(data), size)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(store.TLSFileMode(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	r.dirs[dir] = true
	return f.Close()
}

// writeBlob writes the current entry as blob d: store.WriteBlob hashes it
// on the way and puts it in place only when the digest matches.
func (r *restorer) writeBlob(a *archive, name string, d store.Digest, size int64) error {
	if r.objects != nil {
		return r.writeObject(a, name, d, size)
	}
	_, err := store.WriteBlob(r.dir, d, size, &ctxReader{r.ctx, a.read()})
	switch {
	case errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeInvalid):
		return fmt.Errorf("%s: entry %q does not match its name: %v; the backup is corrupt", a.name, name, err)
	case err != nil:
		return fmt.Errorf("write blob %s: %w", d, err)
	}
	r.have[d] = size
	final := store.BlobPathIn(r.dir, d)
	for dir := filepath.Dir(final); dir != r.dir; dir = filepath.Dir(dir) {
		r.dirs[dir] = true
	}
	return nil
}
