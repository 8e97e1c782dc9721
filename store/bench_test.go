package store

// Benchmarks of the store alone, without HTTP: what a push, a manifest read
// and tagging cost here, to tell the store's share of the integration
// benchmarks (integration/bench_test.go) from the server's and the client's.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkPutBlob stores new blobs of each size with PutBlob: hash, write,
// fsync, rename, directory fsync and the metadata commit. The 4 KiB case
// runs 32 callers at once (16 per core on the 2-core benchmark machine), as
// concurrent small pushes do; the large ones run one at a time, and their
// digests are computed outside the timer, as a client's would be.
func BenchmarkPutBlob(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run("size="+benchSize(size), func(b *testing.B) {
			s := mustOpen(b)
			// Random content, stamped with a counter: every blob is new, also
			// across the reruns testing.B makes of this function.
			base := make([]byte, size)
			rand.Read(base)
			var next atomic.Uint64
			b.SetBytes(int64(size))
			if size == 4<<10 {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					blob := bytes.Clone(base)
					for pb.Next() {
						binary.BigEndian.PutUint64(blob, next.Add(1))
						if _, err := s.PutBlob("bench/blobs", DigestOf(SHA256, blob), int64(size), bytes.NewReader(blob)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			for range b.N {
				b.StopTimer()
				binary.BigEndian.PutUint64(base, next.Add(1))
				d := DigestOf(SHA256, base)
				b.StartTimer()
				if _, err := s.PutBlob("bench/blobs", d, int64(size), bytes.NewReader(base)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkManifestByTag reads a small manifest by tag from 32 goroutines:
// the store's part of a manifest HEAD or GET (PulledManifest, what the
// server calls), and Manifest, which also decodes the record's JSON.
func BenchmarkManifestByTag(b *testing.B) {
	s := mustOpen(b)
	img := pushImage(b, s, "bench/manifests", "img", "v1", "", "layer")
	for _, read := range []struct {
		name string
		fn   func(string, Reference) (StoredManifest, error)
	}{{"pulled", s.PulledManifest}, {"full", s.Manifest}} {
		b.Run(read.name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m, err := read.fn("bench/manifests", Reference{Tag: "v1"})
					if err != nil || m.Digest != img.Digest {
						b.Errorf("manifest by tag: %s, %v; want %s", m.Digest, err, img.Digest)
						return
					}
				}
			})
		})
	}
}

// BenchmarkPutManifestTags adds tags to one manifest, a thousand per
// PutManifest call (the ?tag= parameters of a put by digest): how the
// integration start-up benchmark fills 100,000 tags. One op is one tag.
func BenchmarkPutManifestTags(b *testing.B) {
	const perCall = 1000
	s := mustOpen(b)
	img := pushImage(b, s, "bench/tags", "img", "", "", "layer")
	body := storedBody(b, s, "bench/tags", img.Digest)
	ref := Reference{Digest: img.Digest}
	b.ResetTimer()
	for start := 0; start < b.N; start += perCall {
		tags := make([]string, 0, perCall)
		for i := start; i < min(start+perCall, b.N); i++ {
			tags = append(tags, "t"+strconv.Itoa(i))
		}
		if _, _, err := s.PutManifest("bench/tags", ref, tags, MediaTypeOCIManifest, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tags/s")
}

// storedBody returns the stored bytes of manifest d of repo.
func storedBody(b *testing.B, s *Store, repo string, d Digest) []byte {
	b.Helper()
	m, err := s.Manifest(repo, Reference{Digest: d})
	if err != nil {
		b.Fatal(err)
	}
	return m.Body
}

// benchSize names a size in KiB or MiB.
func benchSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
