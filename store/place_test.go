package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// recordSyncs makes SyncDir record the directories it syncs until the test
// ends, and returns a function that reports them.
func recordSyncs(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var synced []string
	old := syncedDir
	syncedDir = func(dir string) {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, dir)
	}
	t.Cleanup(func() { syncedDir = old })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(synced)
	}
}

// TestWriteBlob_SyncsNewDirectories: the first blob of an algorithm creates
// blobs/<alg> and blobs/<alg>/<ab>; each new directory's entry is synced in
// its parent, and the shard after the rename (issue 20, point 12).
func TestWriteBlob_SyncsNewDirectories(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	synced := recordSyncs(t)
	content := []byte("first blob")
	d := DigestOf(SHA256, content)
	if _, err := WriteBlob(dir, d, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Dir(BlobPathIn(dir, d))
	alg := filepath.Dir(shard)
	for _, want := range []string{BlobsDir(dir), alg, shard} {
		if !slices.Contains(synced(), want) {
			t.Errorf("%s was not synced; synced: %q", want, synced())
		}
	}
	if got, err := os.ReadFile(BlobPathIn(dir, d)); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("blob file: %q, %v", got, err)
	}

	// A second blob in the same shard creates nothing: only the shard is
	// synced.
	before := len(synced())
	other := sameShard(t, d)
	if _, err := WriteBlob(dir, DigestOf(SHA256, other), -1, bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	if got := synced()[before:]; !slices.Equal(got, []string{shard}) {
		t.Errorf("second blob in a shard synced %q, want only the shard", got)
	}
}

// sameShard returns content whose sha256 starts with the same two hex
// digits as d.
func sameShard(t *testing.T, d Digest) []byte {
	t.Helper()
	for i := range 100000 {
		c := []byte("other " + string(rune('a'+i%26)) + string(rune(i)))
		if DigestOf(SHA256, c).Hex()[:2] == d.Hex()[:2] {
			return c
		}
	}
	t.Fatal("no content found in the same shard")
	return nil
}

// TestWriteBlob_Refuses: a body that does not match leaves nothing, neither
// at the final path nor under uploads.
func TestWriteBlob_Refuses(t *testing.T) {
	s := mustOpen(t)
	content := []byte("content")
	d := DigestOf(SHA256, content)
	tests := []struct {
		name string
		d    Digest
		size int64
		want error
	}{
		{"ErrDigestMismatch", DigestOf(SHA256, []byte("other")), -1, ErrDigestMismatch},
		{"ErrSizeInvalid", d, 3, ErrSizeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := WriteBlob(s.Dir(), tc.d, tc.size, bytes.NewReader(content)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(BlobPathIn(s.Dir(), tc.d)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused blob has a file: %v", err)
			}
			if entries, _ := os.ReadDir(UploadsDir(s.Dir())); len(entries) != 0 {
				t.Errorf("uploads/ keeps %d files", len(entries))
			}
		})
	}
}
