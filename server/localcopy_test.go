package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// acceptedPair listens on 127.0.0.1, dials itself and returns the
// accepted side as a trackedConn (with timeouts) and the client side.
func acceptedPair(t *testing.T, timeouts Timeouts) (*trackedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &connListener{
		Listener: ln, timeouts: timeouts, log: slog.New(slog.DiscardHandler), metrics: newAcceptMetrics(),
		adm:   admission{limits: Limits{MaxConnections: 8, MaxConnectionsPerAddr: 8}, byAddr: make(map[netip.Addr]int)},
		conns: make(map[*trackedConn]struct{}),
	}
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*trackedConn), client
}

// TestReadFrom_LocalAndSendfile sends files and parts of files through
// both ways a body leaves a connection: through a buffer (a peer on this
// host) and with sendfile (any other peer), over real TCP, and checks every
// byte arrives, for sizes around the buffers' and the sendfile pieces'.
func TestReadFrom_LocalAndSendfile(t *testing.T) {
	content := make([]byte, 3*writeChunk+localPiece+17)
	rand.New(rand.NewSource(1)).Read(content)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, local := range []bool{true, false} {
		tc, client := acceptedPair(t, Timeouts{Write: 10 * time.Second})
		if !tc.local {
			t.Fatal("a connection from 127.0.0.1 is not local")
		}
		tc.local = local
		for _, span := range [][2]int{
			{0, len(content)}, {0, 1}, {0, localFirst}, {0, localFirst + 1}, {5, localPiece + localFirst + 3},
			{writeChunk - 1, 2*writeChunk + 2}, {len(content) - 10, 10},
		} {
			off, n := span[0], span[1]
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, n)
				_, err := io.ReadFull(client, b)
				if err != nil {
					b = nil
				}
				got <- b
			}()
			// A whole file is an *os.File; a part, a limited one (as a
			// mirror's growing blob is sent).
			var r io.Reader = f
			if off+n != len(content) {
				r = &io.LimitedReader{R: f, N: int64(n)}
			}
			sent, err := tc.ReadFrom(r)
			f.Close()
			if err != nil || sent != int64(n) {
				t.Fatalf("local %v, bytes %d+%d: sent %d, %v", local, off, n, sent, err)
			}
			if b := <-got; !bytes.Equal(b, content[off:off+n]) {
				t.Fatalf("local %v, bytes %d+%d: the client did not get them", local, off, n)
			}
		}
	}
}

// TestReadFrom_LocalWriteTimeout: a local peer that stops reading is cut
// by the write timeout, counted as such, like a remote one.
func TestReadFrom_LocalWriteTimeout(t *testing.T) {
	tc, _ := acceptedPair(t, Timeouts{Write: 200 * time.Millisecond})
	if !tc.local {
		t.Fatal("a connection from 127.0.0.1 is not local")
	}
	done := make(chan error, 1)
	go func() {
		// Far more than the socket buffers hold; the client reads nothing.
		_, err := tc.ReadFrom(io.LimitReader(zeros{}, 1<<30))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("an unread local body ended with %v, want the write deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an unread local body was not cut by a 200ms write timeout within 30s")
	}
	var m dto.Metric
	if err := tc.l.metrics.timeouts.WithLabelValues(phaseNames[phaseWrite]).Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Fatalf("write timeouts counted %v, want 1", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
