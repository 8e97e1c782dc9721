package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// VerifyOptions adjust Verify.
type VerifyOptions struct {
	// Repair fixes what can be fixed without the lost bytes: a corrupt blob
	// file is moved to DATA/quarantine and, like a missing one, loses its
	// record and its links, so the registry says it does not have the blob
	// and a client's next push uploads it again; a link to a blob without
	// a record goes too, and so does an upload session whose data is gone.
	// Manifests are kept: they are reported as needing a re-push until one
	// heals them.
	Repair bool
	// Grace and UploadTTL say when leftovers count as debris, with the
	// meaning they have for GC (GCOptions): an orphan file must be older
	// than Grace, an upload session idle for longer than UploadTTL.
	Grace, UploadTTL time.Duration
	// Progress, when not nil, is called as blob files are hashed with the
	// bytes done and the total. It runs on the verifying goroutine and must
	// return quickly.
	Progress func(done, total int64)
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Blobs     int   // blob records checked
	Bytes     int64 // bytes of blob files hashed
	Manifests int
	Tags      int
	Faults    []Fault // sorted by kind, then subject
}

// Repaired counts the faults that Repair fixed.
func (r *VerifyReport) Repaired() int {
	n := 0
	for _, f := range r.Faults {
		if f.Repaired != "" {
			n++
		}
	}
	return n
}

// FaultKind classifies a Fault.
type FaultKind string

// The kinds of fault, in the order a report lists them.
const (
	FaultMetaDB          FaultKind = "meta.db"          // bbolt's own page check failed
	FaultCorruptBlob     FaultKind = "corrupt blob"     // the file's size or content does not match its digest
	FaultCorruptManifest FaultKind = "corrupt manifest" // its body does not hash to its digest, or its record disagrees with its body
	FaultMissingBlob     FaultKind = "missing blob"     // a record without its file, or a link without its record
	FaultBrokenManifest  FaultKind = "broken manifest"  // lists a blob or child its repository does not have
	FaultDanglingTag     FaultKind = "dangling tag"     // points at a manifest that is not stored
	FaultIndex           FaultKind = "index"            // an index entry (refs, referrers, links, repos) disagrees with the records
	FaultDebris          FaultKind = "debris"           // leftovers GC removes: orphan files, idle or dataless upload sessions
)

var faultOrder = []FaultKind{
	FaultMetaDB, FaultCorruptBlob, FaultCorruptManifest, FaultMissingBlob, FaultBrokenManifest,
	FaultDanglingTag, FaultIndex, FaultDebris,
}

// Fault is one thing wrong in the store.
type Fault struct {
	Kind FaultKind
	// Subject names what is wrong: a digest, repo@digest, repo:tag, an
	// upload id or a path relative to the data directory.
	Subject string
	// Problem says what is wrong with it, as a sentence without a subject.
	Problem string
	// Images are the images the fault breaks, sorted: repo:tag for a tagged
	// manifest (or a tagged index above it), repo@digest for a manifest
	// nothing tags or lists. A client re-pushing them heals the store.
	Images []string
	// Repaired says what Repair did about the fault; empty when nothing.
	Repaired string

	blob     Digest      // the blob of a blob fault
	repo     string      // the repository of a manifest fault, or of a link without record
	manifest Digest      // the manifest of a broken-manifest fault
	upload   string      // the session of an upload without data
	file     os.FileInfo // the corrupt file as hashed
	object   BlobRef     // the corrupt or missing object of a keyed blob store
}

// Verify checks the whole store and reports every fault: each blob file
// hashes to its digest and has the recorded size; each manifest body hashes
// to its digest and its record lists what the body does; every manifest's blobs are
// linked and its children stored in its repository; every tag points at a
// stored manifest; the index buckets agree with the records; meta.db passes
// bbolt's page check; and no debris is older than the grace period. With
// opts.Repair it then fixes what it can (see VerifyOptions.Repair).
//
// The records are checked in one read transaction, the files afterwards, so
// Verify is safe while the registry serves and GC runs: a blob that GC
// removes meanwhile is not a fault. The error is for a check that could not
// run (an unreadable file, a cancelled ctx); faults are in the report.
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	now := s.now()
	snap, err := s.verifyRecords()
	if err != nil {
		return VerifyReport{}, err
	}
	r := VerifyReport{Blobs: len(snap.blobs), Manifests: snap.manifests, Tags: snap.tags}
	faults := snap.faults
	blobFaults, hashed, err := s.verifyBlobFiles(ctx, snap.blobs, opts.Progress)
	r.Bytes = hashed
	if err != nil {
		return r, err
	}
	faults = append(faults, blobFaults...)
	gcOpts := GCOptions{Grace: opts.Grace, UploadTTL: opts.UploadTTL}
	debris, err := s.findDebris(snap.uploads, now, gcOpts)
	if err != nil {
		return r, err
	}
	faults = append(faults, debris...)
	if err := s.attributeImages(faults); err != nil {
		return r, err
	}
	if opts.Repair {
		if err := s.repair(faults); err != nil {
			r.Faults = sortFaults(faults)
			return r, err
		}
	}
	r.Faults = sortFaults(faults)
	return r, nil
}

func sortFaults(faults []Fault) []Fault {
	slices.SortStableFunc(faults, func(a, b Fault) int {
		if c := slices.Index(faultOrder, a.Kind) - slices.Index(faultOrder, b.Kind); c != 0 {
			return c
		}
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return strings.Compare(a.Problem, b.Problem)
	})
	return faults
}

// verifyBlobFiles hashes the file of every blob. A missing file is a fault
// only if, under the digest lock, the record is still there: GC deletes the
// record, then the file, holding that lock.
func (s *Store) verifyBlobFiles(ctx context.Context, blobs []BlobInfo, progress func(done, total int64)) ([]Fault, int64, error) {
	var total, done int64
	for _, b := range blobs {
		total += b.Size
	}
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	report(0)
	var faults []Fault
	buf := make([]byte, copyBufferSize)
	for _, b := range blobs {
		f, err := s.checkBlobFile(ctx, b, buf, report)
		if err != nil {
			return faults, done, err
		}
		if f != nil {
			faults = append(faults, *f)
		}
	}
	return faults, done, nil
}

// checkBlobFile hashes the file of b and returns its fault, if any.
func (s *Store) checkBlobFile(ctx context.Context, b BlobInfo, buf []byte, report func(int64)) (*Fault, error) {
	ref, err := s.storedRef(b.Digest)
	switch {
	case errors.Is(err, ErrBlobUnknown):
		return nil, nil // collected since the snapshot
	case err != nil:
		return nil, err
	case ref.Key != "":
		return s.checkBlobObject(ctx, b, ref, buf, report)
	}
	file, err := os.Open(s.BlobPath(b.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		if !s.recordWithoutFile(b.Digest) {
			return nil, nil
		}
		return &Fault{Kind: FaultMissingBlob, Subject: string(b.Digest), blob: b.Digest,
			Problem: fmt.Sprintf("has a record (%d bytes) but no file", b.Size)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", b.Digest, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat blob %s: %w", b.Digest, err)
	}
	fault := &Fault{Kind: FaultCorruptBlob, Subject: string(b.Digest), blob: b.Digest, file: fi}
	if fi.Size() != b.Size {
		fault.Problem = fmt.Sprintf("the file has %d bytes, the record says %d", fi.Size(), b.Size)
		return fault, nil
	}
	got, err := hashStream(ctx, file, b.Digest, buf, report)
	if err != nil {
		return nil, err
	}
	if got != b.Digest {
		fault.Problem = "its content hashes to " + string(got)
		return fault, nil
	}
	return nil, nil
}

// hashStream reads r to its end, hashing it with d's algorithm and
// reporting the bytes read, and returns the digest it hashes to.
func hashStream(ctx context.Context, r io.Reader, d Digest, buf []byte, report func(int64)) (Digest, error) {
	h := NewHash(d.Algorithm())
	for {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("verify stopped: %w", err)
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		report(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read blob %s: %w", d, err)
		}
	}
	return digestFromHash(d.Algorithm(), h), nil
}

// recordWithoutFile reports whether d has a record and no file, looked at
// under d's lock.
func (s *Store) recordWithoutFile(d Digest) bool {
	unlock := s.lockDigest(d)
	defer unlock()
	recorded := false
	s.db.View(func(tx *bolt.Tx) error {
		recorded = tx.Bucket(bucketBlobs).Get([]byte(d)) != nil
		return nil
	})
	_, err := os.Lstat(s.BlobPath(d))
	return recorded && errors.Is(err, fs.ErrNotExist)
}

// findDebris reports what GC would clean up: upload sessions idle beyond
// the TTL or whose data file is gone, and orphan files older than the grace
// period (the same cutoffs GC uses).
func (s *Store) findDebris(uploads []uploadEntry, now time.Time, opts GCOptions) ([]Fault, error) {
	var faults []Fault
	idleCutoff := now.Add(-opts.uploadTTL())
	for _, u := range uploads {
		subject := "upload " + u.id
		switch {
		case s.uploadWithoutFile(u.id):
			faults = append(faults, Fault{Kind: FaultDebris, Subject: subject, upload: u.id,
				Problem: fmt.Sprintf("a session of %s has a record but no data file", u.repo)})
		case u.updated.Before(idleCutoff):
			faults = append(faults, Fault{Kind: FaultDebris, Subject: subject,
				Problem: fmt.Sprintf("a session of %s has been idle since %s: gc removes it", u.repo, u.updated.UTC().Format(time.RFC3339))})
		}
	}
	o, err := s.findOrphanFiles(now.Add(-opts.grace()), now.Add(-max(opts.grace(), opts.uploadTTL())))
	if err != nil {
		return faults, err
	}
	for _, set := range []struct {
		files  []orphanFile
		lock   lockKeys
		bucket []byte
	}{{o.blobs, s.lockDigests, bucketBlobs}, {o.uploads, s.uploads.tryLockAll, bucketUploads}} {
		for _, f := range set.files {
			if !s.stillUnrecorded(f, set.lock, set.bucket) {
				continue
			}
			rel := relFile(s.dir, f)
			faults = append(faults, Fault{Kind: FaultDebris, Subject: rel.Path,
				Problem: fmt.Sprintf("a file of %d bytes that no record knows: gc removes it", rel.Size)})
		}
	}
	objects, err := s.objectDebris(context.Background(), now.Add(-max(opts.grace(), opts.uploadTTL())))
	return append(faults, objects...), err
}

// uploadWithoutFile reports whether upload id has a record but no data
// file, looked at under the session's lock (a commit moves the file, then
// deletes the record, holding it). A session whose lock a request holds is
// in use, and so not reported.
func (s *Store) uploadWithoutFile(id string) bool {
	unlock, ok := s.uploads.tryLock(id)
	if !ok {
		return false
	}
	defer unlock()
	recorded := false
	s.db.View(func(tx *bolt.Tx) error {
		recorded = tx.Bucket(bucketUploads).Get([]byte(id)) != nil
		return nil
	})
	_, err := os.Lstat(s.uploadPath(id))
	return recorded && errors.Is(err, fs.ErrNotExist)
}

// stillUnrecorded reports whether orphan f still has no record, looked at
// under its lock: placeBlob renames a file into place before it records it.
func (s *Store) stillUnrecorded(f orphanFile, lock lockKeys, bucket []byte) bool {
	held, unlock := lock([]string{f.key})
	defer unlock()
	if len(held) == 0 {
		return false
	}
	unknown := false
	s.db.View(func(tx *bolt.Tx) error {
		unknown = !recordsFile(tx.Bucket(bucket), f.key)
		return nil
	})
	_, err := os.Lstat(f.path)
	return unknown && err == nil
}
