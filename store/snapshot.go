package store

import (
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a point-in-time view of the store, for a backup: the blob
// records and meta.db as one read transaction sees them. It is valid only
// inside the function given to Store.Snapshot.
type Snapshot struct {
	tx *bolt.Tx
	// Blobs is every blob record, sorted by digest.
	Blobs []BlobInfo
}

// MetaSize returns the length of meta.db as the snapshot sees it.
func (sn *Snapshot) MetaSize() int64 { return sn.tx.Size() }

// WriteMeta writes meta.db as the snapshot sees it to w, and returns the
// bytes written.
func (sn *Snapshot) WriteMeta(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Snapshot gives a backup a point-in-time view of the store. In one read
// transaction it lists every blob record, pins those blobs against garbage
// collection and calls fn with the snapshot. The transaction ends when fn
// returns; the pins last until unpin is called, so the caller can copy the
// blob files afterwards: every listed blob keeps its record and its file
// until then. On error nothing stays pinned.
//
// fn must not keep the snapshot. The transaction is meant to be long
// (copying meta.db), which makes bbolt keep the pages it sees: meta.db may
// grow meanwhile.
func (s *Store) Snapshot(fn func(sn *Snapshot) error) (unpin func(), err error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	// Every blob is pinned before the transaction starts: GC's blob sweep
	// checks pins and commits under the pin lock, so a record this
	// transaction sees cannot have been deleted by a sweep that missed the
	// pin. The listed blobs are pinned one by one before the blanket pin
	// goes, so the protection has no gap.
	unpinAll := s.PinAll()
	defer unpinAll()
	err = s.db.View(func(tx *bolt.Tx) error {
		blobs, err := listBlobs(tx)
		if err != nil {
			return err
		}
		digests := make([]Digest, len(blobs))
		for i, b := range blobs {
			digests[i] = b.Digest
		}
		unpin = s.Pin(digests)
		return fn(&Snapshot{tx: tx, Blobs: blobs})
	})
	if err != nil {
		if unpin != nil {
			unpin()
		}
		return nil, err
	}
	return unpin, nil
}

// Blobs returns every blob record, sorted by digest.
func (s *Store) Blobs() ([]BlobInfo, error) {
	var out []BlobInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = listBlobs(tx)
		return err
	})
	return out, err
}

// listBlobs returns every blob record of tx, sorted by digest.
func listBlobs(tx *bolt.Tx) ([]BlobInfo, error) {
	var out []BlobInfo
	err := tx.Bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
		d, err := ParseDigest(string(k))
		if err != nil {
			return fmt.Errorf("blob record %q: %w", k, err)
		}
		info, err := blobInfo(tx, d)
		if err != nil {
			return err
		}
		out = append(out, info)
		return nil
	})
	return out, err
}

// DropUploads removes every upload session record and returns how many
// there were. A restore calls it on the data directory it has just filled:
// the snapshot holds the records of the uploads that were in progress, but
// no backup carries their data, so a client must start those uploads again.
// It does not touch DATA/uploads.
func (s *Store) DropUploads() (int, error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		var ids [][]byte
		err := tx.Bucket(bucketUploads).ForEach(func(k, _ []byte) error {
			ids = append(ids, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := deleteUpload(tx, id); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}
