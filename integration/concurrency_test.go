package integration

// Concurrency: many clients at once on the same blob, tag or content being
// deleted. Goroutines start together on a closed channel and every loop is
// bounded; nothing sleeps.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrency_SameBlob pushes one blob from many clients at once, into
// a few repositories and with each way of uploading: all succeed, one file
// holds the blob, no upload is left behind, and every repository serves it.
func TestConcurrency_SameBlob(t *testing.T) {
	s := startRegistry(t, "")
	content := seededBytes(21, 2<<20)
	d := sha256Digest(content)
	const clients = 16
	ways := []struct {
		name string
		push func(ctx context.Context, repo, loc string) (reply, error)
	}{
		{"POST then PUT", func(ctx context.Context, _, loc string) (reply, error) {
			return s.try(ctx, http.MethodPut, withQuery(loc, "digest", d), content)
		}},
		{"chunked", func(ctx context.Context, _, loc string) (reply, error) {
			half := len(content) / 2
			r, err := s.try(ctx, http.MethodPatch, loc, content[:half], "Content-Range", contentRange(0, half))
			if err != nil || r.Status != http.StatusAccepted {
				return r, err
			}
			return s.try(ctx, http.MethodPut, withQuery(r.Header.Get("Location"), "digest", d), content[half:],
				"Content-Range", contentRange(half, len(content)))
		}},
		{"monolithic POST", func(ctx context.Context, repo, _ string) (reply, error) {
			return s.try(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, content)
		}},
	}
	repo := func(i int) string { return "same/r" + strconv.Itoa(i%4) }

	// Every client opens its session first, so that the uploads proper
	// overlap as much as they can.
	locs := make([]string, clients)
	for i := range clients {
		locs[i] = s.startUpload(t, repo(i))
	}
	start := make(chan struct{})
	results := make([]reply, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			<-start
			results[i], errs[i] = ways[i%len(ways)].push(t.Context(), repo(i), locs[i])
		})
	}
	close(start)
	wg.Wait()
	for i := range clients {
		if errs[i] != nil {
			t.Errorf("client %d (%s): %v", i, ways[i%len(ways)].name, errs[i])
		} else if r := results[i]; r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != d {
			t.Errorf("client %d (%s): %s; want 201 with digest %s", i, ways[i%len(ways)].name, r, d)
		}
	}
	// Abandon the sessions the monolithic clients did not use, so that
	// uploads/ is empty only if every used one was cleaned up.
	for i := range clients {
		if ways[i%len(ways)].name == "monolithic POST" {
			wantStatus(t, s.do(t, http.MethodDelete, locs[i], nil), http.StatusNoContent)
		}
	}

	files := dataFiles(t, filepath.Join(s.Data, "blobs"))
	if want := []string{filepath.Join("sha256", d[7:9], d[7:])}; !slices.Equal(files, want) {
		t.Errorf("blob files %v, want only %v", files, want)
	}
	if stored, err := os.ReadFile(filepath.Join(s.Data, "blobs", "sha256", d[7:9], d[7:])); err != nil || !bytes.Equal(stored, content) {
		t.Errorf("stored blob differs from what was pushed (%v)", err)
	}
	if left := dataFiles(t, filepath.Join(s.Data, "uploads")); len(left) != 0 {
		t.Errorf("upload files left behind: %v", left)
	}
	for i := range 4 {
		r := s.do(t, http.MethodGet, "/v2/"+repo(i)+"/blobs/"+d, nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, content) {
			t.Errorf("%s: status %d, %d bytes; want the blob", r, r.Status, len(r.Body))
		}
	}
}

// dataFiles lists the regular files under dir, relative to it, sorted.
func dataFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}

// TestConcurrency_TagRace PUTs different manifests to one tag at once while
// readers GET the tag: every read is one whole manifest whose digest is the
// Docker-Content-Digest sent with it, and the tag ends at one of them.
func TestConcurrency_TagRace(t *testing.T) {
	s := startRegistry(t, "")
	img := s.pushRawImage(t, "race/x", "base", 1, 1024)
	const writers, readers, maxReads = 12, 4, 400
	bodies := map[string][]byte{}
	for i := range writers {
		m := ociManifest(t, img.Config, []descriptor{img.Layer}, "writer", strconv.Itoa(i))
		bodies[sha256Digest(m)] = m
	}
	start, writersDone := make(chan struct{}), make(chan struct{})
	var writes, reads sync.WaitGroup
	for _, body := range bodies {
		writes.Go(func() {
			<-start
			r, err := s.try(t.Context(), http.MethodPut, "/v2/race/x/manifests/latest", body, "Content-Type", mediaTypeOCIManifest)
			if err != nil || r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != sha256Digest(body) {
				t.Errorf("PUT latest: %s, %v; want 201 with digest %s", r, err, sha256Digest(body))
			}
		})
	}
	for range readers {
		reads.Go(func() {
			<-start
			for range maxReads {
				select {
				case <-writersDone:
					return
				default:
				}
				r, err := s.try(t.Context(), http.MethodGet, "/v2/race/x/manifests/latest", nil, "Accept", mediaTypeOCIManifest)
				if err != nil {
					t.Error(err)
					return
				}
				if problem := checkManifestRead(r, bodies); problem != "" {
					t.Error(problem)
					return
				}
			}
		})
	}
	close(start)
	writes.Wait()
	close(writersDone)
	reads.Wait()

	r := s.do(t, http.MethodGet, "/v2/race/x/manifests/latest", nil, "Accept", mediaTypeOCIManifest)
	wantStatus(t, r, http.StatusOK)
	if problem := checkManifestRead(r, bodies); problem != "" {
		t.Error(problem)
	}
	for d := range bodies {
		wantStatus(t, s.do(t, http.MethodHead, "/v2/race/x/manifests/"+d, nil), http.StatusOK)
	}
}

// checkManifestRead says what is wrong with a GET of a tag that is being
// moved between the manifests in bodies, or "" when nothing is: the only
// other answer allowed is the tag's not existing yet.
func checkManifestRead(r reply, bodies map[string][]byte) string {
	if r.Status == http.StatusNotFound && errorCode(r) == "MANIFEST_UNKNOWN" {
		return ""
	}
	if r.Status != http.StatusOK {
		return fmt.Sprintf("%s: want 200, or 404 MANIFEST_UNKNOWN", r)
	}
	d, header := sha256Digest(r.Body), r.Header.Get("Docker-Content-Digest")
	if _, ok := bodies[d]; !ok || header != d {
		return fmt.Sprintf("%s: body digest %s, Docker-Content-Digest %q; want one of the pushed manifests with its digest", r, d, header)
	}
	return ""
}

// TestConcurrency_DeleteDuringPull deletes a manifest and a blob while
// clients pull them: a pull answered 200 reads the whole, correct body; a
// pull after the delete gets 404 with the right code.
func TestConcurrency_DeleteDuringPull(t *testing.T) {
	s := startRegistry(t, "")

	t.Run("blob deleted mid-body", func(t *testing.T) {
		content := seededBytes(31, 16<<20)
		d := s.pushBlob(t, "pulldel/one", content)
		resp, err := httpClient.Do(s.request(t, http.MethodGet, "/v2/pulldel/one/blobs/"+d, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET blob: %s", resp.Status)
		}
		// The body has started to arrive; delete now.
		var head [1]byte
		if _, err := io.ReadFull(resp.Body, head[:]); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, s.do(t, http.MethodDelete, "/v2/pulldel/one/blobs/"+d, nil), http.StatusAccepted)
		rest, err := io.ReadAll(resp.Body)
		if got := append(head[:], rest...); err != nil || !bytes.Equal(got, content) {
			t.Errorf("pull started before the delete read %d bytes (%v), want the whole %d-byte blob", len(got), err, len(content))
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/pulldel/one/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})

	t.Run("many pullers", func(t *testing.T) {
		img := s.pushRawImage(t, "pulldel/many", "v1", 32, 4<<20)
		layer := seededBytes(32, 4<<20)
		const pullers, maxPulls = 8, 500
		var firstPulls, done sync.WaitGroup
		firstPulls.Add(pullers)
		for range pullers {
			done.Go(func() {
				var once sync.Once
				signal := func() { once.Do(firstPulls.Done) }
				defer signal()
				for range maxPulls {
					gone, problem := pullOnce(t.Context(), s, "pulldel/many", img, layer)
					signal()
					if problem != "" {
						t.Error(problem)
						return
					}
					if gone {
						return
					}
				}
				t.Errorf("a puller saw no 404 in %d pulls after the deletes", maxPulls)
			})
		}
		// Delete only once every puller got the content at least once,
		// so the deletes land among running pulls.
		firstPulls.Wait()
		wantStatus(t, s.do(t, http.MethodDelete, "/v2/pulldel/many/manifests/"+img.Digest, nil), http.StatusAccepted)
		wantStatus(t, s.do(t, http.MethodDelete, "/v2/pulldel/many/blobs/"+img.Layer.Digest, nil), http.StatusAccepted)
		done.Wait()
	})
}

// pullOnce pulls img's manifest by tag and its layer. gone is true when both
// are deleted; problem says what is wrong with an answer. A 200 must carry
// the whole, correct body; a 404 the code of what is missing.
func pullOnce(ctx context.Context, s *server, repo string, img rawImage, layer []byte) (gone bool, problem string) {
	m, err := s.try(ctx, http.MethodGet, "/v2/"+repo+"/manifests/v1", nil, "Accept", mediaTypeOCIManifest)
	if err != nil {
		return false, err.Error()
	}
	manifestGone := m.Status == http.StatusNotFound && errorCode(m) == "MANIFEST_UNKNOWN"
	if !manifestGone && (m.Status != http.StatusOK || !bytes.Equal(m.Body, img.Manifest)) {
		return false, fmt.Sprintf("%s: want the manifest or 404 MANIFEST_UNKNOWN", m)
	}
	b, err := s.try(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+img.Layer.Digest, nil)
	if err != nil {
		return false, err.Error()
	}
	blobGone := b.Status == http.StatusNotFound && errorCode(b) == "BLOB_UNKNOWN"
	if !blobGone {
		sum := sha256.Sum256(b.Body)
		if b.Status != http.StatusOK || len(b.Body) != len(layer) || "sha256:"+hex.EncodeToString(sum[:]) != img.Layer.Digest {
			return false, fmt.Sprintf("%s: %d bytes; want the whole %d-byte layer or 404 BLOB_UNKNOWN", b, len(b.Body), len(layer))
		}
	}
	return manifestGone && blobGone, ""
}
