package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stallingReader sends its data, then blocks until release is closed and
// fails as a client that went away would.
type stallingReader struct {
	data    []byte
	sent    chan struct{}
	release chan struct{}
}

func newStallingReader(data string) *stallingReader {
	return &stallingReader{data: []byte(data), sent: make(chan struct{}), release: make(chan struct{})}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	select {
	case <-r.sent:
	default:
		close(r.sent)
	}
	<-r.release
	return 0, io.ErrUnexpectedEOF
}

// TestAppendUpload_StallBlocksOnlyItsSession stalls a chunk mid-body and
// checks that other sessions (of any id: there are no stripes to share),
// GC and ExpireUploads all go on, and that the stalled session keeps what
// arrived once its client is gone.
func TestAppendUpload_StallBlocksOnlyItsSession(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	stalled, err := s.StartUpload("r", "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	body := newStallingReader("first bytes")
	done := make(chan error, 1)
	go func() {
		_, err := s.AppendUpload("r", stalled.ID, 0, body)
		done <- err
	}()
	<-body.sent

	// 200 other sessions: with 64 stripes, some would share its lock.
	for range 200 {
		u, err := s.StartUpload("r", "bob", 0)
		if err != nil {
			t.Fatal(err)
		}
		finished := make(chan error, 1)
		go func() {
			_, err := s.CommitUpload("r", u.ID, 0, strings.NewReader("x"), DigestOf(SHA256, []byte("x")))
			finished <- err
		}()
		select {
		case err := <-finished:
			if err != nil {
				t.Fatalf("commit beside a stalled session: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a commit waits on another session's stalled body")
		}
	}
	clk.Advance(48 * time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	report, err := s.CollectGarbage(ctx, GCOptions{})
	if err != nil {
		t.Fatalf("gc beside a stalled session: %v", err)
	}
	for _, u := range report.Uploads {
		if u.ID == stalled.ID {
			t.Fatal("gc removed a session while its chunk was streaming")
		}
	}
	if removed, err := s.ExpireUploads(ctx, time.Hour); err != nil || len(removed) != 0 {
		t.Fatalf("ExpireUploads beside a stalled session: %v, %v; want nothing removed", removed, err)
	}

	close(body.release)
	if err := <-done; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stalled append: %v, want the read error", err)
	}
	u, err := s.UploadStatus("r", stalled.ID)
	if err != nil || u.Offset != int64(len("first bytes")) {
		t.Fatalf("session after the client went: %+v, %v; want the %d bytes that arrived", u, err, len("first bytes"))
	}
	checkInvariants(t, s)
}

func TestStartUpload_CapPerOwner(t *testing.T) {
	s := mustOpen(t)
	var ids []string
	for range 3 {
		u, err := s.StartUpload("r", "alice", 3)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if _, err := s.StartUpload("r", "alice", 3); !errors.Is(err, ErrTooManyUploads) {
		t.Fatalf("fourth session: %v, want ErrTooManyUploads", err)
	}
	if entries, _ := os.ReadDir(s.dir + "/uploads"); len(entries) != 3 {
		t.Errorf("uploads/ holds %d files after a refused start, want 3", len(entries))
	}
	if _, err := s.StartUpload("r", "bob", 3); err != nil {
		t.Fatalf("another owner: %v", err)
	}
	// Each way a session ends gives its place back.
	if err := s.CancelUpload("r", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload("r", ids[1], 0, strings.NewReader("y"), DigestOf(SHA256, []byte("y"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.StartUpload("r", "alice", 3); err != nil {
			t.Fatalf("after two sessions ended: %v", err)
		}
	}
	checkInvariants(t, s)
	useClock(s).Advance(48 * time.Hour)
	if removed, err := s.ExpireUploads(context.Background(), time.Hour); err != nil || len(removed) != 4 {
		t.Fatalf("ExpireUploads: %d removed, %v; want the 4 open", len(removed), err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketUploadOwners).Stats().KeyN; n != 0 {
			t.Errorf("uploadowners holds %d entries after every session ended", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAppendChunk_WriteFailureDropsTheChunk(t *testing.T) {
	s := mustOpen(t)
	u, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("r", u.ID, 0, strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	w, err := s.blobs.AppendSession(context.Background(), Session{ID: u.ID, Offset: 4})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("z"), 1<<20)) // what a failed chunk left
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if info, _ := os.Stat(s.uploadPath(u.ID)); info.Size() != 4 {
		t.Fatalf("file is %d bytes after Abort, want the 4 recorded", info.Size())
	}
}

func TestPutManifest_SizeMismatch(t *testing.T) {
	s := mustOpen(t)
	cfg := []byte(`{"x":1}`)
	layer := []byte("layer bytes")
	cd, ld := mustPutBlob(t, s, "r", cfg), mustPutBlob(t, s, "r", layer)
	m := testManifest{
		SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
		Config: &testDesc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: int64(len(cfg))},
		Layers: []testDesc{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: ld, Size: int64(len(layer)) + 1}},
	}
	body := mustJSON(t, m)
	_, _, err := s.PutManifest("r", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body)
	var mismatch *SizeMismatchError
	if !errors.As(err, &mismatch) || mismatch.Digest != ld || mismatch.Stored != int64(len(layer)) {
		t.Fatalf("PutManifest with a wrong layer size: %v, want *SizeMismatchError for %s", err, ld)
	}
	m.Layers[0].Size = int64(len(layer))
	child := mustPutManifest(t, s, "r", "v1", m)
	// An index entry is checked against the stored manifest's length.
	idx := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIIndex,
		Manifests: []testDesc{{MediaType: MediaTypeOCIManifest, Digest: child, Size: 3}}}
	if _, _, err := s.PutManifest("r", Reference{Tag: "idx"}, nil, MediaTypeOCIIndex, mustJSON(t, idx)); !errors.As(err, &mismatch) {
		t.Fatalf("index with a wrong child size: %v, want *SizeMismatchError", err)
	}
	// A digest listed twice with two sizes is invalid on its face.
	m.Layers = append(m.Layers, testDesc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: ld, Size: 5})
	if _, err := ParseManifest(MediaTypeOCIManifest, mustJSON(t, m)); !errors.Is(err, ErrManifestInvalid) {
		t.Fatalf("one digest with two sizes: %v, want ErrManifestInvalid", err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
