package store

import (
	"fmt"
	"os"
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
// It does not hash blob contents. The error is for a failed read only.
func (s *Store) CheckConsistency() ([]string, error) {
	var faults []string
	fault := func(format string, args ...any) { faults = append(faults, fmt.Sprintf(format, args...)) }
	err := s.db.View(func(tx *bolt.Tx) error {
		checkManifests(tx, fault)
		checkIndexes(tx, fault)
		checkLinks(tx, fault)
		checkUploadOwners(tx, fault)
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			var rec blobRecord
			if err := decode(v, &rec); err != nil {
				fault("blob %s: %v", k, err)
				return nil
			}
			info, err := os.Stat(s.BlobPath(Digest(k)))
			switch {
			case err != nil:
				fault("blob %s has a record but no file: %v", k, err)
			case info.Size() != rec.Size:
				fault("blob %s: the record says %d bytes, the file has %d", k, rec.Size, info.Size())
			}
			return nil
		})
	})
	sort.Strings(faults)
	return faults, err
}

func checkManifests(tx *bolt.Tx, fault func(string, ...any)) {
	links, manifests, refs := tx.Bucket(bucketLinks), tx.Bucket(bucketManifests), tx.Bucket(bucketRefs)
	manifests.ForEach(func(k, v []byte) error {
		repo, d := splitPair(k)
		rec, body, err := decodeManifest(v)
		if err != nil {
			fault("manifest %s@%s: %v", repo, d, err)
			return nil
		}
		if problem, _ := manifestProblem(d, rec, body); problem != "" {
			fault("manifest %s@%s: %s", repo, d, problem)
		}
		for _, b := range rec.Blobs {
			if links.Get(key(repo, string(b))) == nil {
				fault("manifest %s@%s lists blob %s, which the repository does not link", repo, d, b)
			}
		}
		for _, c := range rec.Children {
			if manifests.Get(key(repo, string(c))) == nil {
				fault("index %s@%s lists manifest %s, which is not stored", repo, d, c)
			}
		}
		for _, target := range append(append([]Digest(nil), rec.Blobs...), rec.Children...) {
			if refs.Get(key(repo, string(target), string(d))) == nil {
				fault("manifest %s@%s: the refs index lacks %s", repo, d, target)
			}
		}
		return nil
	})
}

// checkIndexes checks that refs, referrers and tags name stored manifests.
func checkIndexes(tx *bolt.Tx, fault func(string, ...any)) {
	manifests := tx.Bucket(bucketManifests)
	for _, b := range [][]byte{bucketRefs, bucketReferrers} {
		tx.Bucket(b).ForEach(func(k, _ []byte) error {
			if p := splitKey(k); len(p) != 3 || manifests.Get(key(p[0], p[2])) == nil {
				fault("%s entry %q names a manifest that is not stored", b, k)
			}
			return nil
		})
	}
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		repo, tag := splitPair(k)
		if manifests.Get(key(repo, string(v))) == nil {
			fault("tag %s:%s points at %s, which is not stored", repo, tag, v)
		}
		return nil
	})
}

func checkLinks(tx *bolt.Tx, fault func(string, ...any)) {
	blobs, links, blobRepos, repos := tx.Bucket(bucketBlobs), tx.Bucket(bucketLinks), tx.Bucket(bucketBlobRepos), tx.Bucket(bucketRepos)
	links.ForEach(func(k, _ []byte) error {
		repo, d := splitPair(k)
		if blobs.Get([]byte(d)) == nil {
			fault("%s links blob %s, which has no record", repo, d)
		}
		if blobRepos.Get(key(string(d), repo)) == nil {
			fault("%s links blob %s, but blobrepos lacks the entry", repo, d)
		}
		if repos.Get([]byte(repo)) == nil {
			fault("%s links blob %s, but the repository has no repos entry", repo, d)
		}
		return nil
	})
	blobRepos.ForEach(func(k, _ []byte) error {
		d, repo := splitPair(k)
		if links.Get(key(string(repo), d)) == nil {
			fault("blobrepos says %s links %s, but the link is missing", repo, d)
		}
		return nil
	})
}

// checkUploadOwners checks that the uploadowners index and the sessions'
// owners agree both ways.
func checkUploadOwners(tx *bolt.Tx, fault func(string, ...any)) {
	uploads, owners := tx.Bucket(bucketUploads), tx.Bucket(bucketUploadOwners)
	uploads.ForEach(func(k, v []byte) error {
		var rec uploadRecord
		if err := decode(v, &rec); err != nil {
			fault("upload %s: %v", k, err)
		} else if rec.Owner != "" && owners.Get(key(rec.Owner, string(k))) == nil {
			fault("upload %s of %q has no uploadowners entry", k, rec.Owner)
		}
		return nil
	})
	owners.ForEach(func(k, _ []byte) error {
		owner, id := splitPair(k)
		var rec uploadRecord
		if v := uploads.Get([]byte(id)); v == nil || decode(v, &rec) != nil || rec.Owner != owner {
			fault("uploadowners entry %q names no session of that owner", k)
		}
		return nil
	})
}
