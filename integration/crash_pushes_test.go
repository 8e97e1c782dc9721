package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestCrash_ConcurrentSmallPushes kills the server (SIGKILL) while eight
// clients push small images as fast as they can, so that commits are
// batched (store/groupcommit.go) when the kill comes. Every blob and every
// tag the server acknowledged before the kill must be there after a
// restart, whole, and the store must be consistent: a batch is answered
// only after its files, shards and records are durable.
func TestCrash_ConcurrentSmallPushes(t *testing.T) {
	data := t.TempDir()
	s := startRegistry(t, data)
	const workers, wantAcked = 8, 150

	var mu sync.Mutex
	var acked []ackedImage
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("crash/w%d", w)
			for i := 0; ctx.Err() == nil && i < 10_000; i++ {
				img, ok := pushSmallImage(ctx, s, repo, uint64(w)<<32|uint64(i), i%2 == 0)
				if !ok {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, img)
				if len(acked) >= wantAcked {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatal("fewer than 150 pushes acknowledged in 2 minutes")
	}
	s.kill() // while the workers keep pushing
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d images acknowledged before the kill", len(acked))

	checkStore(t, data)
	s = startRegistry(t, data)
	for _, img := range acked {
		r := s.do(t, http.MethodGet, "/v2/"+img.repo+"/manifests/"+img.tag, nil, "Accept", mediaTypeOCIManifest)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, img.manifest) {
			t.Fatalf("acknowledged %s:%s after the crash: %s", img.repo, img.tag, r)
		}
		for d, content := range img.blobs {
			r := s.do(t, http.MethodGet, "/v2/"+img.repo+"/blobs/"+d, nil)
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, content) {
				t.Fatalf("acknowledged blob %s of %s after the crash: %s", d, img.repo, r)
			}
		}
	}
}

// ackedImage is an image whose manifest PUT was answered 201.
type ackedImage struct {
	repo, tag string
	manifest  []byte
	blobs     map[string][]byte // digest → content
}

// pushSmallImage pushes a config, a 4 KiB layer and a manifest tagged
// "i<seed>" to repo, the layer with POST then PUT or, when monolithic, in
// one POST. It reports false as soon as a request fails: the caller's
// server was killed.
func pushSmallImage(ctx context.Context, s *server, repo string, seed uint64, monolithic bool) (img ackedImage, ok bool) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":` + strconv.FormatUint(seed, 10) + `}`)
	layer := seededBytes(seed, 4<<10)
	img.repo, img.tag = repo, "i"+strconv.FormatUint(seed, 10)
	img.blobs = map[string][]byte{sha256Digest(config): config, sha256Digest(layer): layer}
	send := func(method, url string, body []byte, want int, headers ...string) (http.Header, bool) {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return nil, false
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return nil, false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header, resp.StatusCode == want
	}
	for _, content := range [][]byte{config, layer} {
		d := sha256Digest(content)
		if monolithic {
			if _, ok := send(http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), content, http.StatusCreated); !ok {
				return img, false
			}
			continue
		}
		h, ok := send(http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/"), nil, http.StatusAccepted)
		if !ok {
			return img, false
		}
		if _, ok := send(http.MethodPut, s.URL(withQuery(h.Get("Location"), "digest", d)), content, http.StatusCreated,
			"Content-Type", "application/octet-stream"); !ok {
			return img, false
		}
	}
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeOCIManifest,
		"config":        descriptor{MediaType: mediaTypeOCIConfig, Digest: sha256Digest(config), Size: int64(len(config))},
		"layers":        []descriptor{{MediaType: mediaTypeOCILayer, Digest: sha256Digest(layer), Size: int64(len(layer))}},
	})
	_, ok = send(http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+img.tag), img.manifest, http.StatusCreated,
		"Content-Type", mediaTypeOCIManifest)
	return img, ok
}
