package server

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the lingering close: how long and how much of a refused
// request body is read after the response before the socket is closed.
const (
	lingerTimeout = 2 * time.Second
	lingerLimit   = 64 << 20
)

// plainPortAnswer is what a TLS client gets on a plain-HTTP port: an
// immediate, readable refusal instead of a handshake that never comes.
const plainPortAnswer = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"This berth port speaks plain HTTP: use http://, or start berth with --tls.\n"

// connListener wraps each accepted connection to add what fasthttp lacks:
//   - a lingering close: the write side is shut first and the rest of an
//     unread request body drained in the background, so a client whose
//     upload was refused early reads its error response instead of a reset;
//   - on a plain-HTTP port, an answer to a TLS ClientHello, which fasthttp
//     would otherwise wait on forever;
//   - the set of connections that never sent a byte, which Shutdown closes:
//     fasthttp only closes connections that finished a request.
type connListener struct {
	net.Listener
	detectTLS bool

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newConnListener(ln net.Listener, detectTLS bool) *connListener {
	return &connListener{Listener: ln, detectTLS: detectTLS, conns: make(map[*trackedConn]struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeUnused closes the connections that have not sent a byte yet.
func (l *connListener) closeUnused() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if !c.used.Load() {
			c.Conn.Close()
			delete(l.conns, c)
		}
	}
}

type trackedConn struct {
	net.Conn
	l      *connListener
	used   atomic.Bool
	closed sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.used.Swap(true) && c.l.detectTLS && p[0] == 0x16 {
		// 0x16 starts a TLS handshake record; no HTTP method does.
		io.WriteString(c.Conn, plainPortAnswer)
		return 0, io.EOF
	}
	return n, err
}

// ReadFrom keeps the sendfile path of *net.TCPConn for blob pulls.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *trackedConn) Close() error {
	c.closed.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		tcp, ok := c.Conn.(*net.TCPConn)
		if !ok || tcp.CloseWrite() != nil {
			c.Conn.Close()
			return
		}
		go func() {
			tcp.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.CopyN(io.Discard, tcp, lingerLimit)
			tcp.Close()
		}()
	})
	return nil
}
