package admin

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// errProtocol marks a peer that broke the control protocol.
var errProtocol = errors.New("control protocol violated")

// remoteStdin is a command's stdin on the server side of the socket: each
// Read asks the client for at most len(p) bytes and waits for its answer.
// It is not safe for concurrent use, like most readers.
type remoteStdin struct {
	fw     *frameWriter
	chunks chan stdinChunk
	ctx    context.Context
	err    error // sticky: EOF, the client's read error, or a broken connection
}

type stdinChunk struct {
	t    frameType
	data []byte
}

var _ io.Reader = (*remoteStdin)(nil)

// startRemoteStdin starts the connection's only reader after the request:
// it hands stdin frames to Read, and calls cancel when the client hangs up or
// sends anything else, so a command whose client is gone stops.
func startRemoteStdin(ctx context.Context, cancel context.CancelFunc, fr *frameReader, fw *frameWriter) *remoteStdin {
	in := &remoteStdin{fw: fw, chunks: make(chan stdinChunk), ctx: ctx}
	go func() {
		defer cancel()
		for {
			t, payload, err := fr.read()
			if err != nil || (t != frameStdin && t != frameStdinEnd) {
				return
			}
			select {
			case in.chunks <- stdinChunk{t, bytes.Clone(payload)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return in
}

func (in *remoteStdin) Read(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := min(len(p), maxFrame)
	var count [4]byte
	binary.BigEndian.PutUint32(count[:], uint32(want))
	if err := in.fw.write(frameStdinWant, count[:]); err != nil {
		in.err = fmt.Errorf("read stdin: %w", err)
		return 0, in.err
	}
	select {
	case c := <-in.chunks:
		if c.t == frameStdinEnd {
			in.err = io.EOF
			if len(c.data) > 0 {
				in.err = fmt.Errorf("read stdin: %s", c.data)
			}
			return 0, in.err
		}
		if len(c.data) == 0 || len(c.data) > want {
			in.err = fmt.Errorf("read stdin: %w: %d bytes for a request of %d", errProtocol, len(c.data), want)
			return 0, in.err
		}
		return copy(p, c.data), nil
	case <-in.ctx.Done():
		in.err = fmt.Errorf("read stdin: the client went away (%w)", in.ctx.Err())
		return 0, in.err
	}
}

// clientStdin is the client's side of stdin: it answers the server's
// requests from in (nil reads as empty).
type clientStdin struct {
	in      io.Reader
	buf     []byte
	pending error // an error that came with the last data, for the next request
}

// answer reads at most the requested count and sends it, or the end.
func (cs *clientStdin) answer(fw *frameWriter, payload []byte) error {
	if len(payload) != 4 {
		return fmt.Errorf("%w: stdin request of %d bytes", errProtocol, len(payload))
	}
	want := binary.BigEndian.Uint32(payload)
	if want == 0 || want > maxFrame {
		return fmt.Errorf("%w: stdin request for %d bytes", errProtocol, want)
	}
	if cs.in == nil {
		return fw.write(frameStdinEnd, nil)
	}
	if cs.pending != nil {
		return cs.end(fw, cs.pending)
	}
	if cap(cs.buf) < int(want) {
		cs.buf = make([]byte, want)
	}
	b := cs.buf[:want]
	for {
		n, err := cs.in.Read(b)
		if n > 0 {
			cs.pending = err
			return fw.write(frameStdin, b[:n])
		}
		if err != nil {
			cs.pending = err
			return cs.end(fw, err)
		}
	}
}

func (cs *clientStdin) end(fw *frameWriter, err error) error {
	if err == io.EOF {
		return fw.write(frameStdinEnd, nil)
	}
	return fw.write(frameStdinEnd, []byte(err.Error()))
}
