package store

import (
	"context"
	"errors"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// keyRecord makes blob d's record name object key, as a record of an S3
// store (or one a migration switched) does.
func keyRecord(t *testing.T, s *Store, d Digest, key string) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error { return setBlobKey(tx, d, key) })
	if err != nil {
		t.Fatal(err)
	}
}

// TestBindBlobs: a meta.db whose records name objects (a backup of an S3
// store) is bound to the directory: its blobs read from DATA/blobs again
// and the directory is its recorded store.
func TestBindBlobs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := mustPutBlob(t, s, "r", []byte("bound"))
	keyRecord(t, s, d, "berth/blobs/abc")
	s.db.Update(func(tx *bolt.Tx) error {
		setBlobStore(tx, "s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A1&path-style=true&region=r")
		return tx.Bucket(bucketMeta).Put(migratingKey, []byte("dir"))
	})
	s.Close()
	if err := BindBlobs(dir, DirLocation, nil); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("open after BindBlobs: %v", err)
	}
	defer s.Close()
	if got := string(readBlob(t, s, "r", d)); got != "bound" {
		t.Fatalf("blob after BindBlobs = %q", got)
	}
	var recorded, pending string
	s.db.View(func(tx *bolt.Tx) error { recorded, pending = recordedBlobStore(tx), migratingTo(tx); return nil })
	if recorded != DirLocation || pending != "" {
		t.Fatalf("recorded %q, pending %q; want %q and none", recorded, pending, DirLocation)
	}
}

// TestRoutedBlobs_NoKeyedStore: a record that names an object, on a store
// opened without an object store, is a storage fault, not a missing blob.
func TestRoutedBlobs_NoKeyedStore(t *testing.T) {
	s := mustOpen(t)
	d := mustPutBlob(t, s, "r", []byte("elsewhere"))
	keyRecord(t, s, d, "berth/blobs/abc")
	_, _, err := s.OpenBlob(context.Background(), "r", d, 0, -1)
	if !errors.Is(err, ErrNoKeyedStore) {
		t.Fatalf("OpenBlob of an object with no object store: %v, want ErrNoKeyedStore", err)
	}
}

// TestGC_MovedFileIsOrphan: a file in DATA/blobs whose record names an
// object (an old copy a migration did not get to remove) is collected as
// an orphan; the record stays.
func TestGC_MovedFileIsOrphan(t *testing.T) {
	s := mustOpen(t)
	d := pushImage(t, s, "r", "img", "v1", "", "moved").Blobs[1]
	keyRecord(t, s, d, "berth/blobs/abc")
	rep, err := s.CollectGarbage(context.Background(), GCOptions{Grace: NoAge, UploadTTL: NoAge})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.BlobPath(d)); !os.IsNotExist(err) || len(rep.Files) != 1 {
		t.Fatalf("the old copy is still there (report: %+v)", rep.Files)
	}
	if ref, err := s.storedRef(d); err != nil || ref.Key != "berth/blobs/abc" {
		t.Fatalf("the record changed: %+v, %v", ref, err)
	}
}

// TestMigrateBlobs_AlreadyThere: a migration to the store the blobs are in
// is refused and changes nothing.
func TestMigrateBlobs_AlreadyThere(t *testing.T) {
	s := mustOpen(t)
	mustPutBlob(t, s, "r", []byte("here"))
	_, err := s.MigrateBlobs(context.Background(), DirBlobs(s.Dir()), MigrateOptions{})
	if !errors.Is(err, ErrMigration) {
		t.Fatalf("migrate to dir on a dir store: %v, want ErrMigration", err)
	}
	var pending string
	s.db.View(func(tx *bolt.Tx) error { pending = migratingTo(tx); return nil })
	if pending != "" {
		t.Fatalf("a refused migration left %q pending", pending)
	}
}
