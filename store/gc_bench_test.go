package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkCollectGarbage measures a collection of a store with 100,000
// blobs and 10,000 manifests in 100 repositories, half of the manifests
// untagged and older than the grace period, so the run removes 5,000
// manifests and 50,000 blobs. peak-RSS-MB is the process's peak resident
// set during the run (Linux only), the store's mapped pages included.
// Run it with -benchtime=1x: each iteration needs a fresh store, and
// building one takes longer than collecting it.
func BenchmarkCollectGarbage(b *testing.B) {
	for _, dryRun := range []bool{true, false} {
		b.Run(fmt.Sprintf("DryRun=%v", dryRun), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s := mustOpen(b)
				fillStore(b, s, 100, 10_000, 10)
				if info, err := os.Stat(filepath.Join(s.Dir(), "meta.db")); err == nil {
					b.SetBytes(info.Size())
				}
				runtime.GC()
				resetPeakRSS()
				b.StartTimer()
				report, err := s.CollectGarbage(context.Background(), GCOptions{DryRun: dryRun})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if len(report.Manifests) != 5_000 || len(report.Blobs) != 50_000 {
					b.Fatalf("removed %d manifests and %d blobs; want 5000 and 50000", len(report.Manifests), len(report.Blobs))
				}
				b.ReportMetric(peakRSSMiB(), "peak-RSS-MB")
			}
		})
	}
}

// fillStore writes repos repositories holding manifests manifests of
// blobsPer tiny blobs each (the first one the config), every blob its own,
// two hours old; the even manifests are tagged. It writes records straight
// into the buckets, in large transactions and without fsyncs, because
// going through PutBlob would take minutes.
func fillStore(b *testing.B, s *Store, repos, manifests, blobsPer int) {
	b.Helper()
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	created := time.Now().Add(-2 * time.Hour)
	const perTx = 1000
	for start := 0; start < manifests; start += perTx {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+perTx, manifests); i++ {
				if err := fillImage(s, tx, i, fmt.Sprintf("bench/repo%03d", i%repos), blobsPer, created); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func fillImage(s *Store, tx *bolt.Tx, i int, repo string, blobs int, created time.Time) error {
	m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIManifest}
	for j := range blobs {
		var content [8]byte
		binary.BigEndian.PutUint64(content[:], uint64(i*blobs+j))
		d := DigestOf(SHA256, content[:])
		if err := os.MkdirAll(filepath.Dir(s.BlobPath(d)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(s.BlobPath(d), content[:], 0o644); err != nil {
			return err
		}
		rec, _ := encode(blobRecord{Size: 8, Created: created.UnixNano()})
		if err := tx.Bucket(bucketBlobs).Put([]byte(d), rec); err != nil {
			return err
		}
		if err := linkBlob(tx, repo, d, created); err != nil {
			return err
		}
		desc := testDesc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: d, Size: 8}
		if j == 0 {
			desc.MediaType = "application/vnd.oci.image.config.v1+json"
			m.Config = &desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	parsed, err := ParseManifest(m.MediaType, body)
	if err != nil {
		return err
	}
	rec := manifestRecord{MediaType: parsed.MediaType, Blobs: parsed.Blobs, Created: created.UnixNano()}
	value, err := encodeManifest(rec, body)
	if err != nil {
		return err
	}
	var tags []string
	if i%2 == 0 {
		tags = []string{"v" + strconv.Itoa(i)}
	}
	return putManifest(tx, repo, DigestOf(SHA256, body), rec, parsed.Sizes, value, tags, created)
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (Linux: /proc/self/clear_refs); elsewhere it does nothing.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMiB returns VmHWM from /proc/self/status in MiB, or 0.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
