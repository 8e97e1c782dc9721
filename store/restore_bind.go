package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ref returns where a staged blob's bytes are: an object key on a keyed
// blob store, "" on the directory.
func (b StagedBlob) Ref() BlobRef { return BlobRef{Digest: b.Digest, Key: b.key} }

// BindBlobs makes the meta.db of the data directory dir, which must not be
// open, say that its blobs are in the blob store at location: each blob
// record names the object keys gives for its digest (none: the file in
// DATA/blobs), location is recorded as the data directory's blob store,
// and no migration is left pending. A restore calls it on the meta.db it
// wrote, whose records speak of the backed-up store.
func BindBlobs(dir, location string, keys map[Digest]string) error {
	db, err := bolt.Open(MetaPath(dir), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open meta.db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		blobs, meta := tx.Bucket(bucketBlobs), tx.Bucket(bucketMeta)
		if blobs == nil || meta == nil {
			return nil // not a store: opening it says so
		}
		changed := map[string][]byte{}
		err := blobs.ForEach(func(k, v []byte) error {
			var rec blobRecord
			if err := decode(v, &rec); err != nil {
				return fmt.Errorf("blob record %s: %w", k, err)
			}
			if want := keys[Digest(k)]; rec.Key != want {
				rec.Key = want
				nv, err := encode(rec)
				if err != nil {
					return err
				}
				changed[string(k)] = nv
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, v := range changed {
			if err := blobs.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if err := meta.Delete(migratingKey); err != nil {
			return err
		}
		return setBlobStore(tx, location)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
