package store

import (
	"context"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// CheckConsistency checks, in one read transaction, that the records agree
// with each other and with the blob files, and returns a sentence for each
// fault, sorted; none means consistent. These are the invariants that
// pushes, deletes and GC preserve whatever their interleaving, and that a
// crash at any point leaves intact:
//
//   - every manifest body hashes to its digest, and its record lists what
//     the body lists;
//   - every blob a manifest lists is linked in its repository, every child
//     it lists is stored there, and the refs index has an entry for each;
//   - every refs, referrers and tags entry names a stored manifest;
//   - every link has its blob record, its blobrepos entry and a repos
//     entry, and every blobrepos entry its link;
//   - every blob record has its file, of the recorded size;
//   - every session with an owner has its uploadowners entry, and every
//     entry its session.
//
// They are Verify's checks of the records (the same functions), with a
// size check of each file in place of hashing it. The error is for a
// failed read only.
func (s *Store) CheckConsistency() ([]string, error) {
	var faults []string
	add := func(f Fault) { faults = append(faults, string(f.Kind)+" "+f.Subject+": "+f.Problem) }
	err := s.db.View(func(tx *bolt.Tx) error {
		blobs, _, _ := verifyRecordsIn(tx, add)
		for _, b := range blobs {
			ref, err := blobRef(tx, b.Digest)
			if err != nil {
				return err
			}
			size, err := s.blobs.Stat(context.Background(), ref)
			switch {
			case err != nil:
				add(Fault{Kind: FaultMissingBlob, Subject: string(b.Digest), Problem: fmt.Sprintf("it has a record but no file: %v", err)})
			case size != b.Size:
				add(Fault{Kind: FaultCorruptBlob, Subject: string(b.Digest), Problem: fmt.Sprintf("the record says %d bytes, the file has %d", b.Size, size)})
			}
		}
		return nil
	})
	sort.Strings(faults)
	return faults, err
}
