package server

import (
	"errors"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the connection limits (serve --max-connections and
// --max-connections-per-address).
const (
	DefaultMaxConnections        = 10000
	DefaultMaxConnectionsPerAddr = 256
	// fdReserve is kept free of connections when --max-connections is
	// derived from the process's file limit: meta.db, blob and upload
	// files, the control socket and the listener need descriptors too.
	fdReserve = 128
)

// Bounds of the pause after accept fails for want of file descriptors.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// refusal answers: written at once to a connection over a limit, which is
// then closed without reading its request.
var (
	refusedBusy = refusal("503 Service Unavailable", "the server has too many connections")
	refusedAddr = refusal("429 Too Many Requests", "too many connections from your address")
)

func refusal(status, message string) string {
	body := `{"errors":[{"code":"` + codeTooManyRequests.Name + `","message":"` + message + `"}]}` + "\n"
	return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Limits bound the connections a server holds. Zero values mean the
// defaults; see MaxConnectionsFor.
type Limits struct {
	// MaxConnections is the most connections open at once; more are
	// answered 503 and closed.
	MaxConnections int
	// MaxConnectionsPerAddr is the most one client address may hold;
	// more are answered 429 and closed. Trusted proxies are exempt: every
	// client behind them shares their address.
	MaxConnectionsPerAddr int
}

// MaxConnectionsFor returns the default connection limit for a process
// allowed nofile file descriptors: DefaultMaxConnections, or less when the
// descriptors would run out first.
func MaxConnectionsFor(nofile uint64) int {
	if nofile == 0 || nofile > DefaultMaxConnections+fdReserve {
		return DefaultMaxConnections
	}
	return max(int(nofile)-fdReserve, int(nofile)/2)
}

// acceptMetrics count what the listener does on its own.
type acceptMetrics struct {
	open     prometheus.Gauge
	refused  *prometheus.CounterVec
	fdErrors prometheus.Counter
	timeouts *prometheus.CounterVec
}

func newAcceptMetrics() *acceptMetrics {
	m := &acceptMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_connections_open",
			Help: "Client connections open now.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_connections_refused_total",
			Help: "Connections closed at once because of a limit: max (--max-connections) or per_address (--max-connections-per-address).",
		}, []string{"reason"}),
		fdErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_accept_fd_exhausted_total",
			Help: "Times accept failed because the process or system ran out of file descriptors (EMFILE, ENFILE); the server waits and retries.",
		}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_connections_timed_out_total",
			Help: "Connections closed by a timeout, by phase: header, idle, body (too little progress) or write.",
		}, []string{"phase"}),
	}
	for _, r := range []string{"max", "per_address"} {
		m.refused.WithLabelValues(r)
	}
	for _, p := range phaseNames {
		m.timeouts.WithLabelValues(p)
	}
	return m
}

func (m *acceptMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.open, m.refused, m.fdErrors, m.timeouts}
}

// acceptFailed handles an Accept error. It returns true, after a pause,
// for running out of file descriptors: the error passes once connections
// close, and fasthttp would otherwise end Serve on it. Any other error is
// for the caller.
func (l *connListener) acceptFailed(err error, backoff *time.Duration) bool {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return false
	}
	l.metrics.fdErrors.Inc()
	if *backoff == 0 {
		*backoff = acceptBackoffMin
		l.log.Warn("out of file descriptors: not accepting connections until some close",
			"err", err, "open", l.openCount(), "max_connections", l.limits.MaxConnections)
	} else {
		*backoff = min(*backoff*2, acceptBackoffMax)
	}
	time.Sleep(*backoff)
	return true
}

// admission counts open connections, in total and per client address.
type admission struct {
	limits  Limits
	trusted proxySet

	mu     sync.Mutex
	open   int
	peak   int // the most open since memory was last given back
	byAddr map[netip.Addr]int
}

// admit takes a place for a connection from addr, or returns the answer to
// refuse it with.
func (a *admission) admit(addr netip.Addr) (refusal string, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open >= a.limits.MaxConnections {
		return refusedBusy, "max"
	}
	exempt := !addr.IsValid() || a.trusted.contains(addr)
	if !exempt && a.byAddr[addr] >= a.limits.MaxConnectionsPerAddr {
		return refusedAddr, "per_address"
	}
	a.open++
	a.peak = max(a.peak, a.open)
	if !exempt {
		a.byAddr[addr]++
	}
	return "", ""
}

// leave gives back the place of a closed connection from addr.
func (a *admission) leave(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open--
	if n, ok := a.byAddr[addr]; ok {
		if n <= 1 {
			delete(a.byAddr, addr)
		} else {
			a.byAddr[addr] = n - 1
		}
	}
}

func (l *connListener) openCount() int {
	l.adm.mu.Lock()
	defer l.adm.mu.Unlock()
	return l.adm.open
}

// peerAddr is the IP address of c's peer, invalid when it has none.
func peerAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// refuse writes answer to a connection over a limit and closes it.
func refuse(c net.Conn, answer string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(answer))
	c.Close()
}

// Giving memory back after a crowd of connections leaves (releaseMemory).
const (
	releaseCheck = 5 * time.Second
	releaseDrop  = 256 // connections fewer than the peak before it is worth it
)

// releaseMemory gives the memory of closed connections back to the kernel
// once their number has dropped by releaseDrop since the peak, checking
// every releaseCheck until done is closed. Each connection's goroutine
// stack and buffers are garbage once it closes, but an idle server
// allocates nothing, so no collection would run for minutes and the
// process would keep its high-water mark (500 stalled uploads left 405 MiB
// behind). It collects on releaseRounds ticks in a row: the first
// collection only moves sync.Pool contents (fasthttp's request contexts
// and buffers) to their victim caches, and fasthttp's idle workers, with
// their stacks, end 10s after their last connection.
func (l *connListener) releaseMemory(done <-chan struct{}) {
	const releaseRounds = 5
	tick := time.NewTicker(releaseCheck)
	defer tick.Stop()
	pending := 0
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		l.adm.mu.Lock()
		if l.adm.peak-l.adm.open >= releaseDrop {
			l.adm.peak = l.adm.open
			pending = releaseRounds
		}
		l.adm.mu.Unlock()
		if pending > 0 {
			pending--
			debug.FreeOSMemory()
		}
	}
}
