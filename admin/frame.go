package admin

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// protocolVersion is the control protocol spoken here. A client and server
// of different versions refuse each other with a clear message instead of
// misreading frames (a CLI upgraded while an old serve still runs).
const protocolVersion = 1

// maxFrame bounds a frame's payload, so a confused or hostile peer cannot
// make the other side allocate without limit. Streams larger than this (a
// backup on stdout) are cut into several frames.
const maxFrame = 1 << 20

// frameType is the first byte of every frame.
type frameType byte

const (
	frameRequest   frameType = 'q' // client → server: JSON request, first frame only
	frameStdout    frameType = 'o' // server → client: bytes for stdout
	frameStderr    frameType = 'e' // server → client: bytes for stderr
	frameStdinWant frameType = 'w' // server → client: 4-byte big-endian count; send at most that many stdin bytes
	frameStdin     frameType = 'i' // client → server: stdin bytes, answering one want
	frameStdinEnd  frameType = 'z' // client → server: stdin is over; empty at EOF, else the client's read error
	frameExit      frameType = 'x' // server → client: JSON exitStatus, last frame
)

const frameHeaderLen = 5

// request is the payload of the first frame.
type request struct {
	Version int    `json:"version"`
	Command string `json:"command"`
	Args    Args   `json:"args"`
}

// exitStatus is the payload of the last frame. Error is empty on success.
type exitStatus struct {
	Error string `json:"error,omitempty"`
}

var errFrameTooLarge = errors.New("control frame larger than allowed")

// frameReader reads frames from one connection. Not safe for concurrent use.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReader(r)}
}

// read returns the next frame. The payload is valid until the next call.
func (fr *frameReader) read() (frameType, []byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	payload := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return 0, nil, fmt.Errorf("read control frame: %w", noEOF(err))
	}
	return frameType(hdr[0]), payload, nil
}

// noEOF turns an EOF inside a frame into ErrUnexpectedEOF: only a clean
// end between frames is io.EOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameWriter writes whole frames to one connection. It is safe for
// concurrent use: a command may write stdout and stderr from different
// goroutines, and frames must not interleave.
type frameWriter struct {
	mu    sync.Mutex
	w     io.Writer
	small []byte // a buffer for small frames, reused under mu
}

func (fw *frameWriter) write(t frameType, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("%w: %d bytes", errFrameTooLarge, len(payload))
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(payload) <= smallFrame {
		// One write: fewer syscalls for output lines, and no empty write
		// after the header, which fails with EPIPE when the peer has
		// already read the whole frame and hung up.
		_, err := fw.w.Write(appendHeader(fw.small[:0], t, len(payload), payload))
		return err
	}
	if _, err := fw.w.Write(appendHeader(fw.small[:0], t, len(payload), nil)); err != nil {
		return err
	}
	_, err := fw.w.Write(payload)
	return err
}

// smallFrame is the payload size up to which a frame is sent in one write.
const smallFrame = 4096

func appendHeader(b []byte, t frameType, n int, payload []byte) []byte {
	b = append(b, byte(t))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, payload...)
}

// frameStream is an io.Writer that sends what is written as frames of one
// type, cut to maxFrame.
type frameStream struct {
	fw *frameWriter
	t  frameType
}

func (s frameStream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		if err := s.fw.write(s.t, p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}
