package store

import (
	"bytes"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFill measures a fill of a 16 MiB blob with one reader at the
// head of the stream (the first client of a cold pull): write, hash, sync
// and place, and the reader's copy.
func BenchmarkFill(b *testing.B) {
	content := make([]byte, 16<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(content)
	d := DigestOf(SHA256, content)
	b.SetBytes(int64(len(content)))
	cpu0 := processCPU()
	var setup time.Duration
	for i := range b.N {
		b.StopTimer()
		c := processCPU()
		s := mustOpen(b)
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
			_, err := io.Copy(io.Discard, r)
			r.Close()
			done <- err
		}()
		// Pieces of 64 KiB, as a socket hands them out.
		if _, err := f.Run("up/app", &pieces{r: bytes.NewReader(content), max: 64 << 10}); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	// CPU of the whole process (the fill and its reader, and the
	// runtime), per GiB filled: what a cold pull costs the server.
	cpu := processCPU() - cpu0 - setup
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(len(content))/(1<<30)), "cpu-s/GiB")
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
