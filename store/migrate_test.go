package store

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// encodeManifestV1 is the schema 1 layout of a manifests value (version
// byte 1, head length, JSON head, body), kept here to build old databases.
func encodeManifestV1(t *testing.T, rec manifestRecord, body []byte) []byte {
	t.Helper()
	head, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{recordVersion}
	out = binary.BigEndian.AppendUint32(out, uint32(len(head)))
	return append(append(out, head...), body...)
}

// TestOpen_MigratesSchema1 turns a store's meta.db back into schema 1
// (JSON manifest heads), then opens it: a read-only open refuses it with a
// hint, a read-write open migrates every manifest record, and what the
// manifests read back is what was pushed.
func TestOpen_MigratesSchema1(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	img := pushImage(t, s, "app", "one", "v1", "", "layer a", "layer b")
	ref := pushImage(t, s, "app", "sig", "", img.Digest, "signature")
	idx := pushIndex(t, s, "app", "multi", img.Digest)
	want := map[Digest]StoredManifest{}
	for _, d := range []Digest{img.Digest, ref.Digest, idx} {
		m, err := s.Manifest("app", Reference{Digest: d})
		if err != nil {
			t.Fatal(err)
		}
		want[d] = m
	}
	// Back to schema 1, as a berth before this change left it.
	var old int
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketManifests)
		var keys, values [][]byte
		b.ForEach(func(k, v []byte) error {
			rec, body, err := decodeManifest(v)
			if err != nil {
				return err
			}
			keys = append(keys, append([]byte(nil), k...))
			values = append(values, encodeManifestV1(t, rec, body))
			return nil
		})
		for i := range keys {
			if err := b.Put(keys[i], values[i]); err != nil {
				return err
			}
		}
		old = len(keys)
		return tx.Bucket(bucketMeta).Put([]byte("schema"), []byte{1})
	})
	if err != nil || old != 3 {
		t.Fatalf("rewrite as schema 1: %d records, %v", old, err)
	}
	s.Close()

	if ro, err := Open(dir, Options{ReadOnly: true}); err == nil {
		ro.Close()
		t.Fatal("a read-only open accepted a schema 1 meta.db")
	} else if !strings.Contains(err.Error(), "schema 1") || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("read-only open of schema 1: %v", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("open schema 1: %v", err)
	}
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte("schema")); len(v) != 1 || v[0] != schemaVersion {
			t.Errorf("schema after the migration: %v", v)
		}
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			if v[0] != manifestRecordVersion {
				t.Errorf("record %q still has version %d", k, v[0])
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for d, w := range want {
		got, err := s.Manifest("app", Reference{Digest: d})
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("manifest %s after the migration:\n got %+v, %v\nwant %+v", d, got, err, w)
		}
		pulled, err := s.PulledManifest("app", Reference{Digest: d})
		if err != nil || pulled.MediaType != w.MediaType || string(pulled.Body) != string(w.Body) ||
			pulled.Size != w.Size || !pulled.Created.Equal(w.Created) {
			t.Errorf("pulled manifest %s after the migration: %+v, %v", d, pulled, err)
		}
	}
	if page, err := s.Referrers("app", img.Digest, "application/vnd.example.signature", "", 10, 1<<20); err != nil ||
		len(page.Digests) != 1 || page.Digests[0] != ref.Digest {
		t.Errorf("referrers after the migration: %v, %v", page, err)
	}
	if faults, err := s.CheckConsistency(); err != nil || len(faults) > 0 {
		t.Errorf("consistency after the migration: %v %v", faults, err)
	}
}

// A record cut inside its head is an error, not a panic.
func TestDecodeManifestHead_Truncated(t *testing.T) {
	v, err := encodeManifest(manifestRecord{MediaType: MediaTypeOCIManifest, Created: 7, Subject: "sha256:x"}, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(v) - 2 { // every cut inside the framing or the head
		if h, err := decodeManifestHead(v[:n]); err == nil {
			t.Fatalf("decodeManifestHead of %d of %d bytes: %+v, no error", n, len(v), h)
		}
	}
	h, err := decodeManifestHead(v)
	if err != nil || string(h.mediaType) != MediaTypeOCIManifest || h.created != 7 || string(h.body) != "{}" {
		t.Fatalf("decodeManifestHead: %+v, %v", h, err)
	}
}
