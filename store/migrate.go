package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Schema migrations, run by Open in the transaction that checks the schema
// version, so a meta.db is either wholly migrated or untouched.
//
//	1 → 2  manifests values: the JSON head (version 1) becomes the binary
//	       head of encodeManifest (version 2); bodies are unchanged.

// migrate brings tx's records from schema from up to schemaVersion.
func migrate(tx *bolt.Tx, from byte) error {
	if from < 2 {
		if err := migrateManifestHeads(tx); err != nil {
			return fmt.Errorf("migrate meta.db from schema %d: %w", from, err)
		}
	}
	return tx.Bucket(bucketMeta).Put([]byte("schema"), []byte{schemaVersion})
}

// migrateManifestHeads rewrites every version 1 manifests value as version
// 2. Keys are collected first: bbolt's cursor may skip keys when the bucket
// changes under it.
func migrateManifestHeads(tx *bolt.Tx) error {
	b := tx.Bucket(bucketManifests)
	var keys [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if len(v) > 0 && v[0] == recordVersion {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		rec, body, err := decodeManifestV1(b.Get(k))
		if err != nil {
			return fmt.Errorf("manifest %q: %w", k, err)
		}
		v, err := encodeManifest(rec, body)
		if err != nil {
			return fmt.Errorf("manifest %q: %w", k, err)
		}
		if err := b.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeManifestV1 reads a version 1 manifests value: version byte, 4-byte
// head length, JSON head (the fields of manifestRecord), body.
func decodeManifestV1(v []byte) (rec manifestRecord, body []byte, err error) {
	if len(v) < 5 || v[0] != recordVersion {
		return rec, nil, fmt.Errorf("manifest record has unknown version")
	}
	n := binary.BigEndian.Uint32(v[1:5])
	if uint64(len(v)) < 5+uint64(n) {
		return rec, nil, fmt.Errorf("manifest record is truncated")
	}
	if err := json.Unmarshal(v[5:5+n], &rec); err != nil {
		return rec, nil, fmt.Errorf("manifest record: %w", err)
	}
	return rec, v[5+n:], nil
}

// checkSchemaReadOnly refuses a meta.db of another schema than this
// code's, for an open that cannot migrate it. An empty one (no schema yet)
// is fine: it holds no records.
func (s *Store) checkSchemaReadOnly() error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		v := meta.Get([]byte("schema"))
		switch {
		case v == nil:
			return nil
		case len(v) != 1 || v[0] > schemaVersion:
			return fmt.Errorf("meta.db has schema %v, newer than this berth understands (%d)", v, schemaVersion)
		case v[0] < schemaVersion:
			return fmt.Errorf("meta.db has schema %d, older than this berth's (%d): open it read-write once (berth serve, or any command that changes it) to migrate it", v[0], schemaVersion)
		}
		return nil
	})
}
