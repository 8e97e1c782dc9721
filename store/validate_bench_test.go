package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkRecordChecks measures, on a store of 100,000 blobs and 10,000
// manifests in 100 repositories, the record checks a restore runs before
// it takes DATA's place: ValidateRecords (every key and value) and
// CheckConsistency (which hashes every manifest body and compares it with
// its record), and verify's records pass (verifyRecords, same manifest
// checks). Run it with -benchtime=1x.
func BenchmarkRecordChecks(b *testing.B) {
	s := mustOpen(b)
	fillStore(b, s, 100, 10_000, 10)
	b.Run("ValidateRecords", func(b *testing.B) {
		for range b.N {
			if err := s.ValidateRecords(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CheckConsistency", func(b *testing.B) {
		for range b.N {
			if faults, err := s.CheckConsistency(); err != nil || len(faults) != 0 {
				b.Fatal(faults, err)
			}
		}
	})
	b.Run("VerifyRecords", func(b *testing.B) {
		for range b.N {
			snap, err := s.verifyRecords()
			if err != nil || len(snap.faults) != 0 {
				b.Fatal(snap.faults, err)
			}
		}
	})
}

// BenchmarkManifestProblem measures the check verify and restore run on
// each manifest: hash the body, parse it, compare it with its record.
func BenchmarkManifestProblem(b *testing.B) {
	s := mustOpen(b)
	fillStore(b, s, 1, 1, 10)
	var rec manifestRecord
	var body []byte
	var d Digest
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			_, d = splitPair(k)
			r, bd, err := decodeManifest(v)
			rec, body = r, append([]byte(nil), bd...)
			return err
		})
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		if p, _ := manifestProblem(d, rec, body); p != "" {
			b.Fatal(p)
		}
	}
}
