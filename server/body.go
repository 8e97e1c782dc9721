package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// drainLimit is how much of an unread request body is read and dropped to
// keep a connection reusable; past it the connection is closed instead.
const drainLimit = 64 << 10

// bodyKey is the c.Locals key of the request's *bodyReader.
const bodyKey = "berth.body"

// bodyReader is the request body stream, remembering whether it reached its
// end: fasthttp's chunked stream blocks on the connection when read again
// after its end, so finishBody must know not to.
//
// It also tells a body cut short from one that ended: fasthttp's stream
// reports a clean io.EOF when the peer hangs up before Content-Length bytes
// came, and an upload that took that for the end would hash a truncated
// blob, fail the digest check and lose the session. A short body fails with
// errBodyShort instead, so the store keeps what arrived and the client
// resumes from there.
type bodyReader struct {
	r    io.Reader
	want int64 // the declared Content-Length, -1 when chunked
	done bool
	n    int64 // bytes read, for the access log and metrics
}

// errBodyShort is the read error of a body that ended before its declared
// Content-Length: the client went away mid-request.
var errBodyShort = fmt.Errorf("request body ended before its Content-Length: %w", io.ErrUnexpectedEOF)

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF && b.want >= 0 && b.n < b.want {
		err = errBodyShort
	}
	if err != nil {
		b.done = true
	}
	return n, err
}

// body returns the request body as a stream, never buffered whole.
func (s *Server) body(c *fiber.Ctx) io.Reader {
	if b, ok := c.Locals(bodyKey).(*bodyReader); ok {
		return b
	}
	b := &bodyReader{r: c.Context().RequestBodyStream(), want: requestLength(c)}
	if b.r == nil || !hasBody(c) {
		b.r, b.done = http.NoBody, true
	}
	c.Locals(bodyKey, b)
	return b
}

// hasBody is false for Content-Length 0 and for -2 (neither a length nor
// chunked): there is no body, and reading the stream would wait on the
// connection for the next request.
func hasBody(c *fiber.Ctx) bool {
	n := c.Request().Header.ContentLength()
	return n != 0 && n != -2
}

// finishBody runs after the handler. With StreamRequestBody, fasthttp leaves
// a body the handler did not read (an upload refused before its first byte)
// in the connection, where it would be parsed as the next request. A short
// rest is drained; a long one ends the connection, since reading gigabytes
// of a refused upload helps nobody.
func (s *Server) finishBody(c *fiber.Ctx) error {
	err := c.Next()
	b := s.body(c).(*bodyReader)
	if !b.done {
		if _, derr := io.CopyN(io.Discard, b, drainLimit); !errors.Is(derr, io.EOF) {
			c.Context().SetConnectionClose()
		}
	}
	return err
}
