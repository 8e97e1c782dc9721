package server

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Bounds of the lingering close: how long and how much of a refused
// request body is read after the response before the socket is closed.
const (
	lingerTimeout = 2 * time.Second
	lingerLimit   = 64 << 20
)

// writeChunk is how much of a file one sendfile call may send under one
// write deadline: a download must move this much per --write-timeout.
const writeChunk = 256 << 10

// plainPortAnswer is what a TLS client gets on a plain-HTTP port: an
// immediate, readable refusal instead of a handshake that never comes.
const plainPortAnswer = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"This berth port speaks plain HTTP: use http://, or start berth with --tls.\n"

// Timeouts bound how long a client may take. fasthttp's own ReadTimeout
// is a total for headers and body together, which would end a slow but
// moving upload, and it does not bound a new connection that sends
// nothing; these are kept by the connection itself instead.
type Timeouts struct {
	// Header is the time from a connection's accept (or from the first
	// byte of a later request) to the end of the request headers.
	Header time.Duration
	// Idle is how long a kept-alive connection may wait for its next
	// request.
	Idle time.Duration
	// Body and BodyMinBytes: a request body must deliver at least
	// BodyMinBytes in every Body interval, else its read fails. A slow
	// upload that keeps moving is never cut, however long it takes.
	Body         time.Duration
	BodyMinBytes int64
	// Write bounds each write of a response (a sendfile call sends at
	// most writeChunk under it).
	Write time.Duration
}

// Default timeouts, as serve's flags default to.
var DefaultTimeouts = Timeouts{
	Header:       30 * time.Second,
	Idle:         2 * time.Minute,
	Body:         60 * time.Second,
	BodyMinBytes: 64 << 10,
	Write:        60 * time.Second,
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	t.Header = orDefault(t.Header, d.Header)
	t.Idle = orDefault(t.Idle, d.Idle)
	t.Body = orDefault(t.Body, d.Body)
	t.Write = orDefault(t.Write, d.Write)
	if t.BodyMinBytes <= 0 {
		t.BodyMinBytes = d.BodyMinBytes
	}
	return t
}

// The phases of a connection, for its read deadline and the timeout metric.
const (
	phaseIdle   = iota // waiting for a request's first byte
	phaseHeader        // reading request headers
	phaseBody          // a handler runs and may read the body
	phaseWrite         // a write timed out
)

var phaseNames = []string{"idle", "header", "body", "write"}

// connListener wraps each accepted connection to add what fasthttp lacks:
//   - accept survives running out of file descriptors (listener.go), and
//     connections over --max-connections, or over the per-address cap,
//     are answered and closed at once;
//   - read and write deadlines by phase (Timeouts);
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
	timeouts  Timeouts
	limits    Limits
	log       *slog.Logger
	metrics   *acceptMetrics
	adm       admission

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (s *Server) newConnListener(ln net.Listener) *connListener {
	return &connListener{
		Listener: ln, detectTLS: s.tls == nil, timeouts: s.timeouts, limits: s.limits,
		log: s.log, metrics: s.metrics.accept,
		adm:   admission{limits: s.limits, trusted: s.proxies, byAddr: make(map[netip.Addr]int)},
		conns: make(map[*trackedConn]struct{}),
	}
}

// Accept returns the next connection within the limits. Connections over
// a limit are answered and closed here; running out of file descriptors
// pauses and retries.
func (l *connListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.acceptFailed(err, &backoff) {
				continue
			}
			return nil, err
		}
		if backoff != 0 {
			l.log.Info("accepting connections again", "open", l.openCount())
			backoff = 0
		}
		addr := peerAddr(c)
		if answer, reason := l.adm.admit(addr); answer != "" {
			l.metrics.refused.WithLabelValues(reason).Inc()
			go refuse(c, answer)
			continue
		}
		l.metrics.open.Inc()
		tc := &trackedConn{Conn: c, l: l, addr: addr, accepted: time.Now(), local: addr.IsLoopback()}
		l.mu.Lock()
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// closeUnused closes the connections that have not sent a byte yet.
func (l *connListener) closeUnused() {
	l.mu.Lock()
	unused := make([]*trackedConn, 0)
	for c := range l.conns {
		if !c.used.Load() {
			unused = append(unused, c)
		}
	}
	l.mu.Unlock()
	for _, c := range unused {
		c.closeNow()
	}
}

// trackedConn is one accepted connection. Read, Write and the phase
// changes all run on the connection's one fasthttp goroutine (handlers run
// there too), so the phase needs no lock; Close may come from anywhere.
type trackedConn struct {
	net.Conn
	l        *connListener
	addr     netip.Addr
	accepted time.Time
	used     atomic.Bool
	closed   sync.Once

	phase     int
	armed     bool      // the idle phase's deadline is set
	requests  int       // requests begun on this connection
	window    int64     // body bytes since the body deadline was last pushed
	writeTill time.Time // the write deadline last set
	// local is set for a peer on this host (a loopback address): blob
	// bodies go out through a buffer instead of sendfile (localcopy.go).
	local bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	t := c.l.timeouts
	if c.phase == phaseIdle && !c.armed {
		// A new connection gets the header timeout from its accept; a
		// kept-alive one the idle timeout, then the header timeout from
		// its next request's first byte.
		deadline := c.accepted.Add(t.Header)
		if c.requests > 0 {
			deadline = time.Now().Add(t.Idle)
		}
		c.Conn.SetReadDeadline(deadline)
		c.armed = true
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.used.Swap(true) && c.l.detectTLS && p[0] == 0x16 {
		// 0x16 starts a TLS handshake record; no HTTP method does.
		io.WriteString(c.Conn, plainPortAnswer)
		return 0, io.EOF
	}
	switch {
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			phase := c.phase
			if phase == phaseIdle && c.requests == 0 {
				phase = phaseHeader // a new connection that never sent a request
			}
			c.l.metrics.timeouts.WithLabelValues(phaseNames[phase]).Inc()
		}
	case c.phase == phaseIdle && n > 0 && c.requests > 0:
		c.phase = phaseHeader
		c.Conn.SetReadDeadline(time.Now().Add(t.Header))
	case c.phase == phaseIdle && n > 0:
		c.phase = phaseHeader // the first request keeps its deadline from accept
	case c.phase == phaseBody:
		if c.window += int64(n); c.window >= t.BodyMinBytes {
			c.window = 0
			c.Conn.SetReadDeadline(time.Now().Add(t.Body))
		}
	}
	return n, err
}

// startBody is called when a request's headers are in and its handler is
// about to run: from now on the body must make progress (Timeouts.Body).
func (c *trackedConn) startBody() {
	c.requests++
	c.phase, c.window = phaseBody, 0
	c.Conn.SetReadDeadline(time.Now().Add(c.l.timeouts.Body))
}

// endRequest is called when the handler is done; the next read waits for
// another request.
func (c *trackedConn) endRequest() {
	c.phase, c.armed = phaseIdle, false
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.pushWriteDeadline()
	n, err := c.Conn.Write(p)
	c.countWriteTimeout(err)
	return n, err
}

// pushWriteDeadline moves the write deadline to Timeouts.Write from now,
// unless it was set very recently: a response written in many small
// pieces need not pay for a deadline change each.
func (c *trackedConn) pushWriteDeadline() {
	w := c.l.timeouts.Write
	now := time.Now()
	if c.writeTill.Sub(now) > w-w/8 {
		return
	}
	c.writeTill = now.Add(w)
	c.Conn.SetWriteDeadline(c.writeTill)
}

func (c *trackedConn) countWriteTimeout(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.metrics.timeouts.WithLabelValues(phaseNames[phaseWrite]).Inc()
	}
}

// ReadFrom keeps the sendfile path of *net.TCPConn for blob pulls, in
// pieces of writeChunk, each under its own write deadline.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	if c.local {
		return c.copyLocal(r)
	}
	// sendfile sees through one *io.LimitedReader only: a limited file
	// (a mirror's growing blob) is cut into pieces of the file itself.
	lr, _ := r.(*io.LimitedReader)
	var total int64
	for {
		c.pushWriteDeadline()
		piece := &io.LimitedReader{R: r, N: writeChunk}
		if lr != nil {
			piece.R, piece.N = lr.R, min(lr.N, writeChunk)
		}
		n, err := rf.ReadFrom(piece)
		if lr != nil {
			lr.N -= n
		}
		total += n
		if err != nil {
			c.countWriteTimeout(err)
			return total, err
		}
		if n < writeChunk {
			return total, nil
		}
	}
}

// SetReadDeadline and SetWriteDeadline ignore fasthttp's deadlines (and
// tls.Conn's, which pass through): the connection keeps its own by phase,
// and fasthttp would clear them (it sets a zero deadline after an idle
// wait when it has no ReadTimeout).
func (c *trackedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *trackedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *trackedConn) SetDeadline(time.Time) error      { return nil }

// closeNow closes c without lingering: it never sent a byte.
func (c *trackedConn) closeNow() {
	c.closed.Do(func() {
		c.forget()
		c.Conn.Close()
	})
}

// forget removes c from the listener's books.
func (c *trackedConn) forget() {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	c.l.adm.leave(c.addr)
	c.l.metrics.open.Dec()
}

func (c *trackedConn) Close() error {
	c.closed.Do(func() {
		c.forget()
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

// connOf returns the trackedConn under a request, nil when there is none
// (in-process tests through app.Test).
func connOf(c *fiber.Ctx) *trackedConn {
	conn := c.Context().Conn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	t, _ := conn.(*trackedConn)
	return t
}

// requestPhases is middleware that moves the connection's deadlines from
// the headers to the body when a handler starts, and back to waiting for
// the next request when it ends.
func (s *Server) requestPhases(c *fiber.Ctx) error {
	tc := connOf(c)
	if tc == nil {
		return c.Next()
	}
	tc.startBody()
	defer tc.endRequest()
	return c.Next()
}
