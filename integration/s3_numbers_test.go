package integration

import (
	"context"
	"fmt"
	"io"
	"testing"

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
