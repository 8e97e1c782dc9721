package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
)

// slowReader hands out its content in small pieces, so readers of a fill
// meet it mid-way.
type slowReader struct {
	b   []byte
	err error // returned after the content instead of io.EOF, when set
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1000)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestStore_Fill(t *testing.T) {
	content := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(content)
	d := DigestOf(SHA256, content)

	t.Run("OK", func(t *testing.T) {
		s := mustOpen(t)
		f, err := s.NewFill(d, int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		got := make([][]byte, 5)
		for i := range got {
			r, err := f.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.Close()
				got[i], _ = io.ReadAll(r)
			}()
		}
		if _, err := f.Run("cache/app", &slowReader{b: content}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		wg.Wait()
		for i, b := range got {
			if !bytes.Equal(b, content) {
				t.Errorf("reader %d got %d bytes, not the content", i, len(b))
			}
		}
		if !bytes.Equal(readBlob(t, s, "cache/app", d), content) {
			t.Errorf("the stored blob differs")
		}
		if _, err := f.NewReader(); err == nil {
			t.Errorf("NewReader after the end succeeded")
		}
	})
	for _, tc := range []struct {
		name string
		body *slowReader
		want error
	}{
		{"ErrDigestMismatch", &slowReader{b: append([]byte{content[0] ^ 1}, content[1:]...)}, ErrDigestMismatch},
		{"ErrSizeInvalid", &slowReader{b: content[:len(content)-1]}, ErrSizeInvalid},
		{"ReadError", &slowReader{b: content[:1<<20], err: io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			f, err := s.NewFill(d, int64(len(content)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := f.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			var readErr error
			var got []byte
			done := make(chan struct{})
			go func() { got, readErr = io.ReadAll(r); r.Close(); close(done) }()
			if _, err := f.Run("cache/app", tc.body); !errors.Is(err, tc.want) {
				t.Errorf("Run: %v, want %v", err, tc.want)
			}
			<-done
			if !errors.Is(readErr, tc.want) {
				t.Errorf("reader ended with %v, want %v: a client would take a bad body for whole", readErr, tc.want)
			}
			if len(got) >= len(content) {
				t.Errorf("reader received all %d bytes of a bad body: a client that stops at the size would take it for whole", len(got))
			}
			if _, err := s.StatBlob("cache/app", d); !errors.Is(err, ErrBlobUnknown) {
				t.Errorf("StatBlob after a failed fill: %v, want ErrBlobUnknown", err)
			}
			if _, err := os.Stat(s.BlobPath(d)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed fill left the blob file: %v", err)
			}
			entries, _ := os.ReadDir(UploadsDir(s.Dir()))
			if len(entries) != 0 {
				t.Errorf("a failed fill left %d files in uploads", len(entries))
			}
		})
	}
}

// TestFill_SendTo: a reader hands the growing file to a real loopback TCP
// connection (sendfile); the client receives the blob whole, or, when
// the digest is wrong, never the whole size and SendTo's error.
func TestFill_SendTo(t *testing.T) {
	content := make([]byte, 3<<20)
	rand.New(rand.NewSource(2)).Read(content)
	d := DigestOf(SHA256, content)
	bad := append([]byte{content[0] ^ 1}, content[1:]...)
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"OK", content, nil},
		{"ErrDigestMismatch", bad, ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			f, err := s.NewFill(d, int64(len(content)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := f.NewReader()
			if err != nil {
				t.Fatal(err)
			}
			server, client := tcpPair(t)
			received := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(client)
				received <- b
			}()
			sent := make(chan error, 1)
			go func() {
				n, err := r.(interface {
					SendTo(io.ReaderFrom) (int64, error)
				}).SendTo(server)
				if err == nil && n != int64(len(content)) {
					err = fmt.Errorf("SendTo sent %d bytes", n)
				}
				r.Close()
				server.Close()
				sent <- err
			}()
			if _, err := f.Run("cache/app", &slowReader{b: tc.body}); !errors.Is(err, tc.want) {
				t.Fatalf("Run: %v, want %v", err, tc.want)
			}
			if err := <-sent; !errors.Is(err, tc.want) {
				t.Errorf("SendTo: %v, want %v", err, tc.want)
			}
			got := <-received
			client.Close()
			switch {
			case tc.want == nil && !bytes.Equal(got, content):
				t.Errorf("the client received %d bytes, not the blob", len(got))
			case tc.want != nil && len(got) >= len(content):
				t.Errorf("the client received all %d bytes of a bad body", len(got))
			}
		})
	}
}

func TestStore_Mirrors(t *testing.T) {
	s := mustOpen(t)
	ok := Mirror{Name: "docker.io", URL: "https://registry-1.docker.io", TagTTL: 1}
	if err := s.AddMirror(ok); err != nil {
		t.Fatalf("AddMirror: %v", err)
	}
	if err := s.AddMirror(ok); !errors.Is(err, ErrMirrorExists) {
		t.Errorf("second AddMirror: %v, want ErrMirrorExists", err)
	}
	for _, tc := range []struct {
		name string
		m    Mirror
	}{
		{"slash in name", Mirror{Name: "a/b", URL: "https://x"}},
		{"upper-case name", Mirror{Name: "Hub", URL: "https://x"}},
		{"no scheme", Mirror{Name: "x", URL: "registry.example.com"}},
		{"path", Mirror{Name: "x", URL: "https://x/v2"}},
		{"credentials in url", Mirror{Name: "x", URL: "https://u:p@x"}},
		{"password without user", Mirror{Name: "x", URL: "https://x", Password: []byte("p")}},
		{"bad CA", Mirror{Name: "x", URL: "https://x", CA: "not pem"}},
		{"negative TTL", Mirror{Name: "x", URL: "https://x", TagTTL: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.AddMirror(tc.m); !errors.Is(err, ErrMirrorInvalid) {
				t.Errorf("AddMirror(%+v): %v, want ErrMirrorInvalid", tc.m, err)
			}
		})
	}
	hub := Mirror{Name: "hub", URL: "https://h", DockerHub: true}
	if err := s.AddMirror(hub); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMirror(Mirror{Name: "hub2", URL: "https://h", DockerHub: true}); !errors.Is(err, ErrMirrorInvalid) {
		t.Errorf("a second --docker-hub mirror: %v, want ErrMirrorInvalid", err)
	}
	if m, err := s.MirrorNamed("docker.io"); err != nil || m.Host() != "registry-1.docker.io" {
		t.Errorf("MirrorNamed: %+v, %v", m, err)
	}
	if err := s.DeleteMirror("docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMirror("docker.io"); !errors.Is(err, ErrMirrorUnknown) {
		t.Errorf("second DeleteMirror: %v, want ErrMirrorUnknown", err)
	}
}

// TestStore_CollectGarbage_NoGrace: a mirror's eviction collects young
// content of its cache, and only there: a young upload elsewhere (a push
// in progress) keeps its grace, and so does a blob another repository
// links too.
func TestStore_CollectGarbage_NoGrace(t *testing.T) {
	s := mustOpen(t)
	cached := mustPutBlob(t, s, "up/app", []byte("cached layer"))
	pushing := mustPutBlob(t, s, "mine/app", []byte("layer of a push in progress"))
	shared := mustPutBlob(t, s, "up/app", []byte("shared layer"))
	mustPutBlob(t, s, "mine/other", []byte("shared layer"))
	opts := GCOptions{NoGrace: func(repo string) bool { return strings.HasPrefix(repo, "up/") }}
	if _, err := s.CollectGarbage(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatBlob("up/app", cached); !errors.Is(err, ErrBlobUnknown) {
		t.Errorf("the cache's unreferenced young blob survived: %v", err)
	}
	if _, err := os.Stat(s.BlobPath(cached)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("its file survived: %v", err)
	}
	if _, err := s.StatBlob("mine/app", pushing); err != nil {
		t.Errorf("a young blob outside the cache was collected: %v", err)
	}
	if _, err := s.StatBlob("mine/other", shared); err != nil {
		t.Errorf("a blob another repository links was collected: %v", err)
	}
}
