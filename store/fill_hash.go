package store

import "hash"

// pieceBuffers is how many pieces of fillPiece bytes a fill holds: one
// being read and written, the rest waiting for or in the hash.
const pieceBuffers = 4

// pieceHasher hashes a fill's pieces on a goroutine of its own, in order,
// while the fill reads and writes the next ones. Its buffers go round:
// buffer hands out a free one, hash queues a filled one and returns it to
// the free list once hashed. It is used by one goroutine (Fill.copyIn);
// close must be called, and after close the hash holds every piece.
type pieceHasher struct {
	h    hash.Hash
	full chan []byte // pieces to hash, in order
	free chan []byte // buffers to read into
	done chan struct{}
}

func newPieceHasher(h hash.Hash) *pieceHasher {
	p := &pieceHasher{
		h:    h,
		full: make(chan []byte, pieceBuffers),
		free: make(chan []byte, pieceBuffers),
		done: make(chan struct{}),
	}
	for range pieceBuffers {
		p.free <- make([]byte, fillPiece)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			p.h.Write(b)
			p.free <- b[:cap(b)]
		}
	}()
	return p
}

// buffer returns a free buffer of fillPiece bytes, waiting while every
// buffer is queued for the hash.
func (p *pieceHasher) buffer() []byte { return <-p.free }

// hash queues b, a buffer from buffer, to be hashed.
func (p *pieceHasher) hash(b []byte) { p.full <- b }

// unused gives back a buffer from buffer that holds nothing to hash.
func (p *pieceHasher) unused(b []byte) { p.free <- b }

// close waits until every queued piece is hashed.
func (p *pieceHasher) close() {
	close(p.full)
	<-p.done
}
