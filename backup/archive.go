package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// maxWindow bounds the zstd window a restore accepts, and so the memory a
// hostile stream can claim. berth writes 4 MiB windows; 128 MiB still reads
// what `zstd --long` makes of a re-compressed backup.
const maxWindow = 128 << 20

// archive reads one backup stream: zstd, then tar, every entry checked
// against the layout. Not safe for concurrent use.
type archive struct {
	name string // for messages: the file name, or "stdin"
	zr   *zstd.Decoder
	tr   *tar.Reader
}

// openArchive starts reading r. concurrency is the zstd decoder's: 1 reads
// no further ahead than asked (a header alone), 0 decodes ahead on several
// cores (a restore).
func openArchive(r io.Reader, name string, concurrency int) (*archive, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(concurrency), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, fmt.Errorf("%s: start zstd: %w", name, err)
	}
	return &archive{name: name, zr: zr, tr: tar.NewReader(zr)}, nil
}

func (a *archive) close() { a.zr.Close() }

// broken turns a read error into the message for a damaged stream.
func (a *archive) broken(err error) error {
	switch {
	case errors.Is(err, zstd.ErrMagicMismatch):
		return fmt.Errorf("%s: %w (it is not zstd-compressed)", a.name, ErrNotBackup)
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s is truncated or corrupt: %w", a.name, err)
}

// next returns the next entry and its tar header, or io.EOF after the last.
func (a *archive) next() (Entry, *tar.Header, error) {
	h, err := a.tr.Next()
	if err == io.EOF {
		return Entry{}, nil, io.EOF
	}
	if err != nil {
		return Entry{}, nil, a.broken(err)
	}
	e, err := checkEntry(h)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("%s: %w", a.name, err)
	}
	return e, h, nil
}

// read returns the reader of the current entry's data; its errors say that
// the archive is damaged.
func (a *archive) read() io.Reader { return &entryReader{a} }

type entryReader struct{ a *archive }

func (r *entryReader) Read(p []byte) (int, error) {
	n, err := r.a.tr.Read(p)
	if err != nil && err != io.EOF {
		err = r.a.broken(err)
	}
	return n, err
}

// readHeader reads the first entry, which must be header.json.
func (a *archive) readHeader() (Header, error) {
	e, h, err := a.next()
	if err == io.EOF {
		return Header{}, fmt.Errorf("%s: %w (it holds no entries)", a.name, ErrNotBackup)
	}
	if err != nil {
		return Header{}, err
	}
	if e.Kind != EntryHeader {
		return Header{}, fmt.Errorf("%s: %w (its first entry is %q, not %s)", a.name, ErrNotBackup, h.Name, headerName)
	}
	if h.Size > maxHeaderSize {
		return Header{}, fmt.Errorf("%s: header.json has %d bytes, more than the %d a backup may have", a.name, h.Size, maxHeaderSize)
	}
	b, err := io.ReadAll(a.read())
	if err != nil {
		return Header{}, err
	}
	hdr, err := decodeHeader(b)
	if err != nil {
		return Header{}, fmt.Errorf("%s: %w", a.name, err)
	}
	return hdr, nil
}

// finish reads what follows the end of the tar stream, so that the zstd
// checksum at the end of the frame is checked, and refuses anything there
// but zero padding.
func (a *archive) finish() error {
	buf := make([]byte, 32<<10)
	for {
		n, err := a.zr.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return fmt.Errorf("%s has data after the end of the backup", a.name)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return a.broken(err)
		}
	}
}

// ReadHeader reads just the header of the backup r: what an incremental
// backup needs of the backup it follows. name is for messages. It returns
// an error wrapping ErrNotBackup for a stream that is not a berth backup.
func ReadHeader(r io.Reader, name string) (Header, error) {
	a, err := openArchive(r, name, 1)
	if err != nil {
		return Header{}, err
	}
	defer a.close()
	return a.readHeader()
}
