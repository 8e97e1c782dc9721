package backup

import (
	"hash"
	"io"
	"sync"
)

// copyHashed copies src to dst through buf and feeds h the same bytes,
// hashing each chunk while it is written: the two take about as long for a
// blob, and on two cores this nearly halves a copy. Both only read the
// chunk, so sharing it is safe. It returns the bytes copied.
func copyHashed(dst io.Writer, h hash.Hash, src io.Reader, buf []byte) (int64, error) {
	var total int64
	var wg sync.WaitGroup
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			wg.Go(func() { h.Write(chunk) })
			_, werr := dst.Write(chunk)
			wg.Wait()
			total += int64(n)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
