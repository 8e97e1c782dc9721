package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// mustOpen opens a store in a temp dir and, when the test ends, closes it
// after checking meta.db's consistency (bbolt's tx.Check).
func mustOpen(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.CheckPages(); err != nil {
			t.Errorf("meta.db check: %v", err)
		}
		s.Close()
	})
	return s
}

func mustPutBlob(t testing.TB, s *Store, repo string, content []byte) Digest {
	t.Helper()
	d := DigestOf(SHA256, content)
	if _, err := s.PutBlob(repo, d, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	return d
}

func readBlob(t testing.TB, s *Store, repo string, d Digest) []byte {
	t.Helper()
	f, _, err := s.OpenBlob(context.Background(), repo, d, 0, -1)
	if err != nil {
		t.Fatalf("OpenBlob %s: %v", d, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpen_ErrLocked(t *testing.T) {
	s := mustOpen(t)
	_, err := Open(s.Dir(), Options{LockTimeout: 50 * 1e6})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
}

func TestStore_PutBlob(t *testing.T) {
	s := mustOpen(t)
	content := []byte("hello layer")
	d := DigestOf(SHA256, content)

	t.Run("OK", func(t *testing.T) {
		if _, err := s.PutBlob("a/b", d, int64(len(content)), bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		if got := readBlob(t, s, "a/b", d); !bytes.Equal(got, content) {
			t.Fatalf("read back %q", got)
		}
		if _, err := os.Stat(s.BlobPath(d)); err != nil {
			t.Fatalf("blob file: %v", err)
		}
		if !strings.Contains(s.BlobPath(d), "/blobs/sha256/"+d.Hex()[:2]+"/"+d.Hex()) {
			t.Fatalf("blob path %s is not sharded as the contract says", s.BlobPath(d))
		}
	})
	t.Run("NotLinkedElsewhere", func(t *testing.T) {
		if _, err := s.StatBlob("other", d); !errors.Is(err, ErrBlobUnknown) {
			t.Fatalf("StatBlob in another repo: got %v, want ErrBlobUnknown", err)
		}
	})
	t.Run("ErrDigestMismatch", func(t *testing.T) {
		wrong := DigestOf(SHA256, []byte("other"))
		_, err := s.PutBlob("a/b", wrong, -1, bytes.NewReader(content))
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
		if _, err := os.Stat(s.BlobPath(wrong)); !os.IsNotExist(err) {
			t.Fatalf("a mismatched blob left a file: %v", err)
		}
	})
	t.Run("ErrSizeInvalid", func(t *testing.T) {
		_, err := s.PutBlob("a/b", d, int64(len(content))+1, bytes.NewReader(content))
		if !errors.Is(err, ErrSizeInvalid) {
			t.Fatalf("got %v, want ErrSizeInvalid", err)
		}
	})
	t.Run("NoUploadDebris", func(t *testing.T) {
		entries, err := os.ReadDir(s.Dir() + "/uploads")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Fatalf("uploads/ has %d leftover files", len(entries))
		}
	})
}

func TestStore_ChunkedUpload(t *testing.T) {
	s := mustOpen(t)
	content := bytes.Repeat([]byte("0123456789"), 100_000)
	d := DigestOf(SHA256, content)
	u, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("r", u.ID, 0, bytes.NewReader(content[:300_000])); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrWrongOffset", func(t *testing.T) {
		_, err := s.AppendUpload("r", u.ID, 10, bytes.NewReader(content[10:20]))
		var oe *OffsetError
		if !errors.As(err, &oe) || oe.Offset != 300_000 {
			t.Fatalf("got %v, want OffsetError at 300000", err)
		}
	})
	t.Run("ErrOtherRepo", func(t *testing.T) {
		if _, err := s.UploadStatus("other", u.ID); !errors.Is(err, ErrUploadUnknown) {
			t.Fatalf("got %v, want ErrUploadUnknown", err)
		}
	})
	t.Run("InterruptedChunkKeepsWhatArrived", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(content[300_000:400_000]), errReader{})
		_, err := s.AppendUpload("r", u.ID, 300_000, r)
		if err == nil {
			t.Fatal("AppendUpload of a failing reader returned no error")
		}
		st, err := s.UploadStatus("r", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Offset != 400_000 {
			t.Fatalf("offset after interrupted chunk = %d, want 400000", st.Offset)
		}
	})
	info, err := s.CommitUpload("r", u.ID, 400_000, bytes.NewReader(content[400_000:]), d)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(content)) {
		t.Fatalf("size %d", info.Size)
	}
	if got := readBlob(t, s, "r", d); !bytes.Equal(got, content) {
		t.Fatal("content differs after chunked upload")
	}
	if _, err := s.UploadStatus("r", u.ID); !errors.Is(err, ErrUploadUnknown) {
		t.Fatalf("session still known after commit: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestStore_CommitUploadSHA512(t *testing.T) {
	s := mustOpen(t)
	content := []byte("sha512 content")
	d := DigestOf(SHA512, content)
	u, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload("r", u.ID, -1, bytes.NewReader(content), d); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, "r", d); !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
}

func TestStore_ConcurrentSameBlob(t *testing.T) {
	s := mustOpen(t)
	content := bytes.Repeat([]byte("x"), 1<<20)
	d := DigestOf(SHA256, content)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			repo := "r" + string(rune('a'+i%4))
			_, err := s.PutBlob(repo, d, int64(len(content)), bytes.NewReader(content))
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, repo := range []string{"ra", "rb", "rc", "rd"} {
		if got := readBlob(t, s, repo, d); !bytes.Equal(got, content) {
			t.Fatalf("%s: content differs", repo)
		}
	}
}

func TestStore_MountBlob(t *testing.T) {
	s := mustOpen(t)
	d := mustPutBlob(t, s, "src", []byte("shared"))
	if _, err := s.MountBlob("dst", "src", d); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, "dst", d); string(got) != "shared" {
		t.Fatalf("mounted content %q", got)
	}
	if _, err := s.MountBlob("dst2", "nowhere", d); !errors.Is(err, ErrBlobUnknown) {
		t.Fatalf("mount from a repo without the blob: got %v", err)
	}
	_, err := s.MountAnyBlob("dst3", d, func(repo string) bool { return repo == "nothing-readable" })
	if !errors.Is(err, ErrBlobUnknown) {
		t.Fatalf("mount from no readable repo: got %v", err)
	}
}
