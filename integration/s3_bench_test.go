package integration

import (
	"bytes"
	"net/http"
	"os"
	"testing"

	"github.com/berth-registry/berth/fixtures"
)

// BenchmarkS3 pushes and pulls a 256 MiB layer through berth with its blobs
// on versitygw: the push (one streamed PUT, and a chunked PATCH), the pull
// redirected to S3 (the client follows the 307) and the pull streamed
// through berth (--s3-redirect=false). Read it against BenchmarkVersitygw,
// the same server's own PUT and GET, in the same run:
//
//	go test ./integration/ -run '^$' -bench 'Versitygw|S3' -benchtime 3x
func BenchmarkS3(b *testing.B) {
	const size = 256 << 20
	s3 := fixtures.StartS3(b)
	redirect := startS3Registry(b, s3, "")
	client := benchClient(b)
	following := *client
	following.CheckRedirect = nil // the redirected pull follows to S3
	for _, chunked := range []bool{false, true} {
		name := "push/put"
		if chunked {
			name = "push/chunked"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				seed := benchSeed.Add(1)
				d := patternDigest(b, seed, size)
				b.StartTimer()
				if err := benchPush(client, redirect, "bench/s3", d, newPatternReader(seed, size), chunked); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	seed := benchSeed.Add(1)
	d := patternDigest(b, seed, size)
	if err := benchPush(client, redirect, "bench/s3", d, newPatternReader(seed, size), false); err != nil {
		b.Fatal(err)
	}
	b.Run("pull/redirect", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if err := benchPull(&following, redirect, "bench/s3", d, size, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	stream := startS3Registry(b, fixtures.StartS3(b), "", "--s3-redirect=false")
	if err := benchPush(client, stream, "bench/s3", d, newPatternReader(seed, size), false); err != nil {
		b.Fatal(err)
	}
	b.Run("pull/stream", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if err := benchPull(client, stream, "bench/s3", d, size, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkS3ManifestHead: manifest HEAD at concurrency 32 with the blobs
// in the directory and on S3. HEAD reads meta.db only, so the two should
// not differ.
func BenchmarkS3ManifestHead(b *testing.B) {
	s3 := fixtures.StartS3(b)
	for _, backend := range []string{"dir", "s3"} {
		var s *server
		if backend == "dir" {
			s = startRegistry(b, "")
		} else {
			s = startS3Registry(b, s3, "")
		}
		client := benchClient(b)
		body := []byte("config")
		d := sha256Digest(body)
		req, _ := http.NewRequest(http.MethodPost, s.URL("/v2/bench/head/blobs/uploads/?digest="+d), bytes.NewReader(body))
		if _, _, err := benchCall(client, req, http.StatusCreated, nil); err != nil {
			b.Fatal(err)
		}
		manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":6},"layers":[]}`)
		req, _ = http.NewRequest(http.MethodPut, s.URL("/v2/bench/head/manifests/v0"), bytes.NewReader(manifest))
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if _, _, err := benchCall(client, req, http.StatusCreated, nil); err != nil {
			b.Fatal(err)
		}
		b.Run("backend="+backend, func(b *testing.B) {
			runConcurrently(b, s, "req/s", func(int) error {
				req, _ := http.NewRequest(http.MethodHead, s.URL("/v2/bench/head/manifests/v0"), nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				_, _, err := benchCall(client, req, http.StatusOK, nil)
				return err
			})
		})
	}
}

// TestS3_LargePushRSS pushes a 2 GiB layer, streamed with chunked transfer
// encoding, to berth on S3 and checks the server's peak resident set
// stays under 64 MiB: parts are buffered one at a time, never the layer. It
// takes a minute or more, so it runs with BERTH_S3_LARGE=1.
func TestS3_LargePushRSS(t *testing.T) {
	if os.Getenv("BERTH_S3_LARGE") != "1" {
		t.Skip("set BERTH_S3_LARGE=1 to push a 2 GiB layer to berth on S3")
	}
	const size = 2 << 30
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	client := benchClient(t)
	seed := benchSeed.Add(1)
	d := patternDigest(t, seed, size)
	for _, chunked := range []bool{true, false} {
		if err := benchPush(client, s, "big/s3", d, newPatternReader(seed, size), chunked); err != nil {
			t.Fatalf("push (chunked %v): %v", chunked, err)
		}
	}
	peak := procStatusKiB(t, s, "VmHWM") >> 10
	t.Logf("berth's peak RSS after two 2 GiB pushes to S3: %d MiB", peak)
	if peak >= 64 {
		t.Errorf("peak RSS %d MiB, want under 64 MiB", peak)
	}
	if n := len(s3Objects(t, s3)); n != 1 {
		t.Errorf("%d objects after pushing one blob twice, want 1", n)
	}
}
