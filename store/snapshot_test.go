package store

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

// TestStore_Snapshot takes a snapshot, deletes everything that references
// its blobs and collects garbage: the snapshot's blobs keep their records
// and files until unpin, and go in the first collection after it.
func TestStore_Snapshot(t *testing.T) {
	s := mustOpen(t)
	img := pushImage(t, s, "app", "one", "v1", "", "layer one")
	var listed []Digest
	var copied bytes.Buffer
	var metaSize int64
	unpin, err := s.Snapshot(func(sn *Snapshot) error {
		for _, b := range sn.Blobs {
			listed = append(listed, b.Digest)
		}
		metaSize = sn.MetaSize()
		_, err := sn.WriteMeta(&copied)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(img.Blobs))
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %v, want the image's blobs %v", listed, want)
	}
	if copied.Len() == 0 || int64(copied.Len()) != metaSize {
		t.Fatalf("WriteMeta copied %d bytes, MetaSize says %d", copied.Len(), metaSize)
	}

	if err := s.DeleteManifest("app", Reference{Digest: img.Digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectGarbage(context.Background(), GCOptions{Grace: NoAge}); err != nil {
		t.Fatal(err)
	}
	for _, d := range img.Blobs {
		if !hasBlobFile(t, s, d) {
			t.Errorf("GC removed pinned blob %s", d)
		}
	}
	unpin()
	unpin() // a second call does nothing
	if _, err := s.CollectGarbage(context.Background(), GCOptions{Grace: NoAge}); err != nil {
		t.Fatal(err)
	}
	for _, d := range img.Blobs {
		if hasBlobFile(t, s, d) {
			t.Errorf("blob %s survived GC after unpin", d)
		}
	}
}

func TestStore_SnapshotErrorUnpins(t *testing.T) {
	s := mustOpen(t)
	d := mustPutBlob(t, s, "junk", []byte("unreferenced"))
	boom := bytes.ErrTooLarge
	if _, err := s.Snapshot(func(*Snapshot) error { return boom }); err != boom {
		t.Fatalf("Snapshot returned %v, want fn's error", err)
	}
	if _, err := s.CollectGarbage(context.Background(), GCOptions{Grace: NoAge}); err != nil {
		t.Fatal(err)
	}
	if hasBlobFile(t, s, d) {
		t.Error("a failed Snapshot left its blobs pinned")
	}
}

func TestStore_DropUploads(t *testing.T) {
	s := mustOpen(t)
	for range 3 {
		if _, err := s.StartUpload("app", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DropUploads(); err != nil || n != 3 {
		t.Fatalf("DropUploads = %d, %v; want 3", n, err)
	}
	if n, err := s.DropUploads(); err != nil || n != 0 {
		t.Fatalf("second DropUploads = %d, %v; want 0", n, err)
	}
}
