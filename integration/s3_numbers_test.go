package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/fixtures"
)

// BenchmarkVersitygw measures the S3 server the S3 backend's tests use on
// its own, with minio-go and no berth in between: PUT of a 256 MiB object
// (minio-go's multipart upload, as berth's pushes are) and GET of it read
// to the end. It is the baseline that berth's push and pull MB/s on the S3
// backend are read against, so run them together:
//
//	go test ./integration/ -run '^$' -bench 'Versitygw|S3' -benchtime 3x
func BenchmarkVersitygw(b *testing.B) {
	const size = 256 << 20
	s3 := fixtures.StartS3(b)
	c := s3.Client(b)
	ctx := context.Background()
	seed := benchSeed.Add(1)

	b.Run("put", func(b *testing.B) {
		b.SetBytes(size)
		for i := range b.N {
			key := fmt.Sprintf("bench/put-%d", i)
			if _, err := c.PutObject(ctx, s3.Bucket, key, newPatternReader(seed, size), size, minio.PutObjectOptions{}); err != nil {
				b.Fatalf("put: %v\n%s", err, s3.Log())
			}
		}
	})
	if _, err := c.PutObject(ctx, s3.Bucket, "bench/get", newPatternReader(seed, size), size, minio.PutObjectOptions{}); err != nil {
		b.Fatalf("put: %v\n%s", err, s3.Log())
	}
	b.Run("get", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, blockSize)
		for range b.N {
			obj, err := c.GetObject(ctx, s3.Bucket, "bench/get", minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.CopyBuffer(io.Discard, obj, buf)
			obj.Close()
			if err != nil || n != size {
				b.Fatalf("get: %d bytes, %v; want %d", n, err, size)
			}
		}
	})
}

// TestS3_MigrateNumbers measures blobs migrate, directory → S3 → directory,
// on a serving registry holding BERTH_S3_MIGRATE_MIB MiB of 8 MiB layers,
// with versitygw's own PUT/GET of one 256 MiB object beside it in the same
// run. It logs MB/s; it asserts nothing but success. Skipped unless set:
//
//	BERTH_S3_MIGRATE_MIB=512 go test ./integration/ -run TestS3_MigrateNumbers -v
func TestS3_MigrateNumbers(t *testing.T) {
	mib, err := strconv.Atoi(os.Getenv("BERTH_S3_MIGRATE_MIB"))
	if err != nil || mib < 8 {
		t.Skip("set BERTH_S3_MIGRATE_MIB (say 512) to measure blobs migrate against versitygw")
	}
	s3 := fixtures.StartS3(t)
	s := launch(t, "", s3Env(s3), healthy, "--auth", "none")
	for i := range mib / 8 {
		s.push(t, fmt.Sprintf("num/img:v%d", i), mustImage(t, mustLayer(t, 8<<20)))
	}
	for _, to := range []string{s3Location(s3), "dir"} {
		start := time.Now()
		out := mustBerthS3(t, s3, "blobs", "migrate", "--data", s.Data, "--to", to)
		t.Logf("%.1fs: %s", time.Since(start).Seconds(), strings.TrimSpace(out))
	}
	// versitygw alone, in the same run.
	c := s3.Client(t)
	const size = 256 << 20
	start := time.Now()
	if _, err := c.PutObject(t.Context(), s3.Bucket, "num/put", newPatternReader(benchSeed.Add(1), size), size, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put := time.Since(start)
	start = time.Now()
	obj, err := c.GetObject(t.Context(), s3.Bucket, "num/put", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, obj)
	obj.Close()
	if err != nil || n != size {
		t.Fatalf("get: %d, %v", n, err)
	}
	get := time.Since(start)
	t.Logf("versitygw alone: PUT %.1f MB/s, GET %.1f MB/s", size/put.Seconds()/1e6, size/get.Seconds()/1e6)
}
