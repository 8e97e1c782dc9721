package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Moving the blobs of a data directory between the directory and an object
// store (docs/storage-operations.md), online: the server keeps serving and
// taking pushes.
//
//  1. The target is recorded in meta.db as the migration's (migratingKey)
//     and becomes the primary store: new blobs and upload sessions go there
//     from now on, so the set left to copy only shrinks.
//  2. Each blob still in the old store is copied: streamed from the old
//     store into the target, hashed on the way (Write checks digest and
//     size), an object read back and hashed again, then its record is
//     switched to the new copy in one commit — only if the record is still
//     the one copied (GC may have collected the blob meanwhile). Only once
//     that commit is durable is the old copy removed.
//  3. Passes repeat until one finds nothing left in the old store (a
//     session begun there before step 1 may still finish there). Then the
//     target is recorded as the data directory's blob store.
//
// Every step is a commit of its own, so an interrupted migration leaves
// each blob in one store or the other, its record saying which, and the
// routed store reads both (blobstore_routed.go); running the migration
// again resumes it. A server restarted meanwhile, with either store as
// --blob-store, opens the other one too (openMigrationTarget).

// migratingKey is the key in the meta bucket that names the target of an
// unfinished migration.
var migratingKey = []byte("blobstore-migrating")

// migratingTo returns the Location an unfinished migration moves the blobs
// to, "" when none runs.
func migratingTo(tx *bolt.Tx) string {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		return string(meta.Get(migratingKey))
	}
	return ""
}

// maxMigratePasses bounds the passes of a migration: each one copies what
// upload sessions begun in the old store before the switch finished there.
const maxMigratePasses = 10

// MigrateOptions adjust MigrateBlobs.
type MigrateOptions struct {
	// Progress, when not nil, is called as bytes are copied with the bytes
	// done and the total of the current pass.
	Progress func(done, total int64)
}

// MigrateReport says what MigrateBlobs did.
type MigrateReport struct {
	From, To string // Locations
	Resumed  bool   // a migration to To had been started before
	Blobs    int    // blobs copied by this run
	Bytes    int64  // their bytes
	Removed  int    // old copies removed
	Gone     int    // blobs collected (or re-recorded) while being copied
	Missing  []Digest
	Took     time.Duration
}

// ErrMigration is wrapped by the errors of a migration that cannot start.
var ErrMigration = errors.New("cannot migrate the blobs")

// MigrateBlobs moves every blob into the blob store to (see above) and
// records it as the data directory's store. It is safe while the store
// serves. Blobs whose bytes are missing are left as they are and listed
// (verify reports them); the migration still completes.
func (s *Store) MigrateBlobs(ctx context.Context, to BlobStore, opts MigrateOptions) (MigrateReport, error) {
	start := time.Now()
	if !s.route.migrate.TryLock() {
		return MigrateReport{}, fmt.Errorf("%w: a migration is running", ErrMigration)
	}
	defer s.route.migrate.Unlock()
	rep, err := s.startMigration(ctx, to)
	if err != nil {
		return rep, err
	}
	to = s.route.main()
	toDir := !s.route.isKeyedStore(to)
	for pass := 0; ; pass++ {
		left, err := s.blobsOutside(toDir)
		if err != nil {
			return rep, err
		}
		left = withoutDigests(left, rep.Missing)
		if len(left) == 0 {
			break
		}
		if pass == maxMigratePasses {
			return rep, fmt.Errorf("%d blobs are still arriving in %s after %d passes; run the migration again", len(left), rep.From, pass)
		}
		if err := s.migratePass(ctx, to, left, &rep, opts); err != nil {
			return rep, err
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := setBlobStore(tx, to.Location()); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(migratingKey)
	})
	if err == nil && !toDir {
		err = s.removeMovedFiles(ctx, &rep)
	}
	rep.Took = time.Since(start)
	return rep, err
}

// removeMovedFiles removes the files in DATA/blobs whose records name
// objects: old copies an interrupted migration switched but did not get to
// remove. Under the digest's lock, a file whose record names an object is
// read by nobody (reads follow the record), so no grace period is needed.
// The objects an interrupted move into the directory leaves are GC's: an
// object may be written before its record, so only its age tells.
func (s *Store) removeMovedFiles(ctx context.Context, rep *MigrateReport) error {
	var moved []Digest
	err := s.route.dir.Walk(ctx, func(o StoredObject) error {
		moved = append(moved, o.Ref.Digest)
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range moved {
		unlock := s.lockDigest(d)
		keyed := false
		s.db.View(func(tx *bolt.Tx) error {
			ref, err := blobRef(tx, d)
			keyed = err == nil && ref.Key != ""
			return nil
		})
		if keyed {
			err = s.route.dir.Delete(ctx, BlobRef{Digest: d})
		}
		unlock()
		if err != nil {
			return fmt.Errorf("remove the old copy of %s: %w", d, err)
		}
		if keyed {
			rep.Removed++
		}
	}
	return nil
}

// startMigration checks that the blobs can move to to, that to answers,
// records the migration and turns new blobs over to it.
func (s *Store) startMigration(ctx context.Context, to BlobStore) (MigrateReport, error) {
	var recorded, pending string
	s.db.View(func(tx *bolt.Tx) error {
		recorded, pending = recordedBlobStore(tx), migratingTo(tx)
		return nil
	})
	rep := MigrateReport{From: recorded, To: to.Location(), Resumed: pending == to.Location()}
	switch {
	case pending != "" && pending != to.Location():
		return rep, fmt.Errorf("%w: a migration to %s is unfinished; finish it first (blobs migrate --to %s)", ErrMigration, pending, pending)
	case pending == "" && recorded == to.Location():
		return rep, fmt.Errorf("%w: they are in %s already", ErrMigration, recorded)
	}
	if _, dir := to.(*dirBlobs); dir {
		to = s.route.dir
	} else if k := s.route.keyedStore(); k != nil && k.Location() != to.Location() {
		return rep, fmt.Errorf("%w: they are in %s; move them to the directory first (blobs migrate --to dir), then to %s", ErrMigration, k.Location(), to.Location())
	}
	probe, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Any answer but "no such blob" (or the blob) means the store cannot
	// be used: unreachable, refused credentials, no such bucket.
	_, err := to.Stat(probe, BlobRef{Digest: emptyDigest, Key: "berth-migration-probe"})
	if err != nil && !errors.Is(err, ErrBlobUnknown) {
		return rep, fmt.Errorf("%w: %s does not answer: %v", ErrMigration, to.Location(), err)
	}
	if s.route.isKeyedStore(to) && s.route.keyedStore() == nil {
		s.route.setKeyed(to)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(migratingKey, []byte(to.Location()))
	})
	if err != nil {
		return rep, err
	}
	if s.route.isKeyedStore(to) {
		to = s.route.keyedStore()
	}
	s.route.setPrimary(to)
	return rep, nil
}

// emptyDigest is the digest of no bytes.
const emptyDigest Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// blobsOutside returns the blobs whose records say they are not in the
// directory (toDir) or not in the keyed store (!toDir).
func (s *Store) blobsOutside(toDir bool) ([]BlobInfo, error) {
	var out []BlobInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			if toDir == !recordHasKey(v) {
				return nil // a directory record without decoding
			}
			var rec blobRecord
			if err := decode(v, &rec); err != nil {
				return fmt.Errorf("blob record %s: %w", k, err)
			}
			if (rec.Key == "") != toDir {
				out = append(out, BlobInfo{Digest: Digest(k), Size: rec.Size})
			}
			return nil
		})
	})
	return out, err
}

func withoutDigests(blobs []BlobInfo, drop []Digest) []BlobInfo {
	if len(drop) == 0 {
		return blobs
	}
	skip := make(map[Digest]bool, len(drop))
	for _, d := range drop {
		skip[d] = true
	}
	out := blobs[:0]
	for _, b := range blobs {
		if !skip[b.Digest] {
			out = append(out, b)
		}
	}
	return out
}

// migratePass moves the blobs left into to.
func (s *Store) migratePass(ctx context.Context, to BlobStore, left []BlobInfo, rep *MigrateReport, opts MigrateOptions) error {
	var total, done int64
	for _, b := range left {
		total += b.Size
	}
	for _, b := range left {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migration stopped: %w", err)
		}
		if err := s.migrateBlob(ctx, to, b, rep); err != nil {
			return fmt.Errorf("migrate blob %s: %w", b.Digest, err)
		}
		done += b.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return nil
}

// migrateBlob copies blob b into to, switches its record to the copy and
// removes the old copy.
func (s *Store) migrateBlob(ctx context.Context, to BlobStore, b BlobInfo, rep *MigrateReport) error {
	old, err := s.storedRef(b.Digest)
	if errors.Is(err, ErrBlobUnknown) {
		rep.Gone++
		return nil
	}
	if err != nil {
		return err
	}
	r, err := s.blobs.Open(ctx, old, 0, -1)
	if errors.Is(err, ErrBlobUnknown) {
		rep.Missing = append(rep.Missing, b.Digest)
		return nil
	}
	if err != nil {
		return err
	}
	staged, err := s.route.staging(to.Write(ctx, b.Digest, b.Size, r))
	r.Close()
	if err != nil {
		return fmt.Errorf("copy to %s: %w", to.Location(), err)
	}
	if staged.key != "" {
		if err := s.checkObject(ctx, to, staged); err != nil {
			to.Discard(ctx, staged)
			return err
		}
	}
	switched := false
	err = s.groupUpdate([]StagedBlob{staged}, func(tx *bolt.Tx) error {
		switched = false
		now, err := blobRef(tx, b.Digest)
		if err != nil || now != old {
			return nil
		}
		switched = true
		return setBlobKey(tx, b.Digest, staged.key)
	})
	s.route.settle([]StagedBlob{staged})
	if err != nil || !switched {
		if staged.key != "" {
			to.Discard(ctx, staged)
		} // a file placed in DATA/blobs without its record is GC's
		if err == nil {
			rep.Gone++
		}
		return err
	}
	rep.Blobs++
	rep.Bytes += b.Size
	// The switch is durable: the old copy goes.
	if err := s.blobs.Delete(ctx, old); err != nil {
		return fmt.Errorf("remove the old copy: %w", err)
	}
	rep.Removed++
	return nil
}

// checkObject reads back the object a keyed store staged and hashes it.
func (s *Store) checkObject(ctx context.Context, to BlobStore, staged StagedBlob) error {
	ref := BlobRef{Digest: staged.Digest, Key: staged.key}
	r, err := to.Open(ctx, ref, 0, -1)
	if err != nil {
		return fmt.Errorf("read back %s: %w", ref.Key, err)
	}
	defer r.Close()
	var n int64
	got, err := hashStream(ctx, r, staged.Digest, make([]byte, copyBufferSize), func(k int64) { n += k })
	switch {
	case err != nil:
		return fmt.Errorf("read back %s: %w", ref.Key, err)
	case got != staged.Digest || n != staged.Size:
		return fmt.Errorf("%w: the copy %s reads back as %s (%d bytes)", ErrDigestMismatch, ref.Key, got, n)
	}
	return nil
}

// setBlobKey records that blob d's bytes are object key ("" : the file in
// DATA/blobs).
func setBlobKey(tx *bolt.Tx, d Digest, key string) error {
	b := tx.Bucket(bucketBlobs)
	var rec blobRecord
	if err := decode(b.Get([]byte(d)), &rec); err != nil {
		return fmt.Errorf("blob record %s: %w", d, err)
	}
	rec.Key = key
	v, err := encode(rec)
	if err != nil {
		return err
	}
	return b.Put([]byte(d), v)
}

// openMigrationTarget gives the routed store the other store of an
// unfinished migration, so blobs already moved, or not yet moved, are read
// from where they are. An object store is opened with opts (its
// credentials: a file, or else the environment).
func (s *Store) openMigrationTarget(opts BlobStoreOptions) error {
	var recorded, pending string
	s.db.View(func(tx *bolt.Tx) error {
		recorded, pending = recordedBlobStore(tx), migratingTo(tx)
		return nil
	})
	other := pending
	if s.blobs.Location() == pending {
		other = recorded
	}
	if pending == "" || other == DirLocation || s.route.keyedStore() != nil {
		return nil
	}
	b, err := OpenBlobStore(s.dir, other, opts)
	if err != nil {
		return fmt.Errorf("open %s, the other store of the unfinished migration: %w", other, err)
	}
	s.route.setKeyed(b)
	return nil
}
