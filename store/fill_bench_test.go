package store

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFill measures a fill of a 16 MiB blob with one reader at the
// head of the stream (the first client of a cold pull): write, hash, sync
// and place, and the reader's send to a client over loopback TCP — copied
// through a buffer (WriteTo, as over TLS) or handed to the connection as
// the file (SendTo, sendfile). The client's end only drains the socket.
func BenchmarkFill(b *testing.B) {
	for _, bc := range []struct {
		name string
		send func(r io.Reader, conn *net.TCPConn) error
	}{
		{"copy", func(r io.Reader, conn *net.TCPConn) error {
			_, err := r.(io.WriterTo).WriteTo(struct{ io.Writer }{conn})
			return err
		}},
		{"sendfile", func(r io.Reader, conn *net.TCPConn) error {
			_, err := r.(interface {
				SendTo(io.ReaderFrom) (int64, error)
			}).SendTo(conn)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkFill(b, bc.send) })
	}
}

func benchmarkFill(b *testing.B, send func(io.Reader, *net.TCPConn) error) {
	content := make([]byte, 16<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(content)
	d := DigestOf(SHA256, content)
	b.SetBytes(int64(len(content)))
	cpu0 := processCPU()
	var setup time.Duration
	for range b.N {
		b.StopTimer()
		c := processCPU()
		s := mustOpen(b)
		server, client := tcpPair(b)
		drained := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, client)
			drained <- err
		}()
		setup += processCPU() - c
		b.StartTimer()
		f, err := s.NewFill(d, int64(len(content)))
		if err != nil {
			b.Fatal(err)
		}
		r, err := f.NewReader()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			err := send(r, server)
			r.Close()
			server.Close()
			done <- err
		}()
		// Pieces of 64 KiB, as a socket hands them out.
		if _, err := f.Run("up/app", &pieces{r: bytes.NewReader(content), max: 64 << 10}); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if err := <-drained; err != nil {
			b.Fatal(err)
		}
		client.Close()
	}
	// CPU of the whole process (the fill, its reader's send, the
	// client's drain and the runtime), per GiB filled.
	cpu := processCPU() - cpu0 - setup
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(len(content))/(1<<30)), "cpu-s/GiB")
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b testing.TB) (server, client *net.TCPConn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pieces reads at most max bytes at a time from r.
type pieces struct {
	r   io.Reader
	max int
}

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.max)]) }
