package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Stats counts what a store holds: the numbers /metrics reports.
type Stats struct {
	Repositories int
	Manifests    int
	Tags         int
	// Blobs counts blob records; BlobBytes is the sum of their sizes, the
	// bytes DATA/blobs holds for them.
	Blobs     int
	BlobBytes int64
	// Uploads counts the upload sessions in progress; UploadBytes is what
	// they have received so far.
	Uploads     int
	UploadBytes int64
}

// Stats returns the counts from one read transaction, so they agree with
// each other. It visits every key of the buckets it counts and decodes the
// blob and upload records, touching no file: on a registry of 100,000
// blobs that is a few tens of milliseconds, so it suits a metrics scrape
// every few seconds but not a per-request path.
func (s *Store) Stats() (Stats, error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Repositories = countKeys(tx.Bucket(bucketRepos))
		st.Manifests = countKeys(tx.Bucket(bucketManifests))
		st.Tags = countKeys(tx.Bucket(bucketTags))
		err := tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			var rec blobRecord
			if err := decode(v, &rec); err != nil {
				return fmt.Errorf("blob %s: %w", k, err)
			}
			st.Blobs++
			st.BlobBytes += rec.Size
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var rec uploadRecord
			if err := decode(v, &rec); err != nil {
				return fmt.Errorf("upload %s: %w", k, err)
			}
			st.Uploads++
			st.UploadBytes += rec.Offset
			return nil
		})
	})
	return st, err
}

// writableCheckFile is the file CheckWritable writes in DATA/uploads.
const writableCheckFile = ".writable-check"

func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// CheckWritable reports whether the store can still take a push: it
// commits an empty write transaction to meta.db, and writes, syncs and
// removes a small file in DATA/uploads, where pushed bytes land first. An
// empty bbolt commit still writes the freelist and a meta page and syncs
// them, so it proves the file is open, writable and syncable without
// adding a key; the file proves the disk has room. The cost is two small
// fsyncs, cheap enough for a readiness probe every few seconds.
func (s *Store) CheckWritable() error {
	if err := s.db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("write meta.db: %w", err)
	}
	// One fixed name, which is no upload id: concurrent checks share it, and
	// a crash between create and remove leaves at most this one small file.
	f, err := os.OpenFile(s.uploadPath(writableCheckFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create a file in uploads: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write([]byte("ok\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write a file in uploads: %w", err)
	}
	return nil
}
