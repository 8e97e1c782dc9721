package server

import (
	"io"
	"sync"
)

// A client on the same host (docker or containerd on the NAS itself, a
// reverse proxy in front of berth on localhost) reads a blob out of its
// socket and hashes it on the same CPUs that send it. With sendfile the
// socket holds references to page-cache pages, so the client's copy reads
// memory that no CPU has touched lately; written from a buffer, the bytes
// it copies were just written by the sending CPU and are still in the
// shared cache. Measured on one two-core box, a checked 1 GiB pull
// (docs/performance.md, "Pulls from the same host"): the client's CPU per
// GiB falls by about a fifth and the pull runs faster, for a little more
// server CPU (the read into the buffer). Over a real network the NIC reads
// the pages itself, so other peers keep sendfile.

// localPiece is the buffer of one local copy: one read and one write per
// piece, each write under its own write deadline (256 KiB measured lowest
// in server CPU of 32, 64, 128 and 256 KiB, at the same rate). A body
// starts with a buffer of localFirst and moves to localPiece only when it
// fills it, so the many small bodies (manifests' blobs, 4 KiB layers)
// never hold a large buffer.
const (
	localFirst = 16 << 10
	localPiece = 256 << 10
)

var (
	localFirstBuffers = sync.Pool{New: func() any { b := make([]byte, localFirst); return &b }}
	localBuffers      = sync.Pool{New: func() any { b := make([]byte, localPiece); return &b }}
)

// copyLocal sends r to the connection through a pooled buffer: at most one
// of each size per body being sent, returned when it is done.
func (c *trackedConn) copyLocal(r io.Reader) (int64, error) {
	first := localFirstBuffers.Get().(*[]byte)
	defer localFirstBuffers.Put(first)
	var large *[]byte
	defer func() {
		if large != nil {
			localBuffers.Put(large)
		}
	}()
	buf := *first
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			c.pushWriteDeadline()
			w, err := c.Conn.Write(buf[:n])
			total += int64(w)
			if err != nil {
				c.countWriteTimeout(err)
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
		if n == len(buf) && large == nil {
			large = localBuffers.Get().(*[]byte)
			buf = *large
		}
	}
}
