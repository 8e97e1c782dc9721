package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStore_Stats(t *testing.T) {
	s := mustOpen(t)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{}) {
		t.Fatalf("empty store: %+v, want all zero", st)
	}

	// Two repositories share one layer: it is one blob, counted once.
	pushImage(t, s, "a/one", "img", "v1", "", "shared layer", "only in one")
	pushImage(t, s, "b/two", "img", "v1", "", "shared layer")
	u, err := s.StartUpload("a/one", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("a/one", u.ID, 0, strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}

	st, err = s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	cfgOne := int64(len(`{"image":"img","repo":"a/one"}`))
	cfgTwo := int64(len(`{"image":"img","repo":"b/two"}`))
	want := Stats{
		Repositories: 2, Manifests: 2, Tags: 2,
		Blobs:     4, // two configs, two layers
		BlobBytes: cfgOne + cfgTwo + int64(len("shared layer")+len("only in one")),
		Uploads:   1, UploadBytes: 5,
	}
	if st != want {
		t.Errorf("Stats() = %+v\nwant      %+v", st, want)
	}
}

func TestStore_CheckWritable(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := mustOpen(t)
		if err := s.CheckWritable(); err != nil {
			t.Fatalf("CheckWritable on a fresh store: %v", err)
		}
		entries, err := os.ReadDir(filepath.Join(s.Dir(), "uploads"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("CheckWritable left %s in uploads", entries[0].Name())
		}
	})
	t.Run("ErrUploadsNotWritable", func(t *testing.T) {
		// Permission bits do not stop root, so uploads is replaced by a
		// file, which nobody can create entries in.
		s := mustOpen(t)
		uploads := filepath.Join(s.Dir(), "uploads")
		if err := os.RemoveAll(uploads); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(uploads, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.CheckWritable()
		if err == nil || !strings.Contains(err.Error(), "uploads") {
			t.Fatalf("CheckWritable with uploads replaced by a file: %v, want an error naming uploads", err)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.CheckWritable(); err == nil || !strings.Contains(err.Error(), "meta.db") {
			t.Fatalf("CheckWritable on a closed store: %v, want an error naming meta.db", err)
		}
	})
}
