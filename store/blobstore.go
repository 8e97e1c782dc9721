package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A BlobStore holds the bytes of blobs; meta.db holds everything about them
// (docs/storage.md). Two implementations live in this package: the sharded
// directory DATA/blobs (DirBlobs, the default) and an S3 bucket (s3blobs.go).
// Every read, write and removal of blob bytes in store goes through the
// Store's BlobStore; other packages reach blob bytes only through Store
// methods (OpenBlob, BlobURL, OpenStoredBlob).
//
// A stored blob is named by a BlobRef: its digest, and the object key the
// blob record holds when the backend writes each upload straight to an
// object of its own (S3: no copy on commit). The directory backend names a
// blob by its digest alone (Key is ""): its path is BlobPathIn.
//
// The invariant of docs/storage.md holds for every backend: a blob record
// is committed only once its bytes are completely written, verified against
// the digest and durable; removal runs the other way (record first, bytes
// after), so a crash leaves an orphan for GC, never a record without bytes.
//
// Implementations are safe for concurrent use. Methods that return
// ErrBlobUnknown wrap it, so errors.Is works.
type BlobStore interface {
	// Location names the backend for meta.db and messages: "dir" for the
	// directory, "s3://bucket/prefix?endpoint=…" for S3. It never holds
	// credentials. Open refuses a data directory whose recorded location
	// differs from its BlobStore's.
	Location() string

	// Open returns n bytes of the stored blob ref starting at off (n < 0:
	// to the end). An absent blob fails with ErrBlobUnknown. On the
	// directory backend the reader is an *os.File (sendfile works) that
	// stays readable after a concurrent Delete. The caller closes it.
	Open(ctx context.Context, ref BlobRef, off, n int64) (io.ReadCloser, error)
	// Stat returns the stored size of ref, or ErrBlobUnknown.
	Stat(ctx context.Context, ref BlobRef) (int64, error)
	// Delete removes the bytes of ref; an absent blob is no error. The
	// caller has already removed (or never committed) the record.
	Delete(ctx context.Context, ref BlobRef) error
	// Walk calls fn for every stored blob object (upload sessions are not
	// included), in no particular order, until fn returns an error, which
	// Walk returns. A blob written while Walk runs may be missed.
	Walk(ctx context.Context, fn func(StoredObject) error) error

	// Write stores r as a new, not yet recorded blob d: hashed while
	// streaming, checked against d (else ErrDigestMismatch) and size (-1:
	// unknown; else ErrSizeInvalid), made durable. On error nothing is
	// left. Pass the result to the Store's placement (placeBlob) or drop it
	// with Discard.
	Write(ctx context.Context, d Digest, size int64, r io.Reader) (StagedBlob, error)

	// StartSession creates the storage of upload session id and returns its
	// backend state (kept in the upload record; may be nil).
	StartSession(ctx context.Context, id string) ([]byte, error)
	// AppendSession returns a writer that appends to session id at
	// sess.Offset, dropping anything written past it before (the tail of a
	// chunk that was never recorded).
	AppendSession(ctx context.Context, sess Session) (SessionWriter, error)
	// FinishSession turns the sess.Offset bytes of session id into a
	// staged blob d: durable, not yet recorded. It does not check the
	// digest (the caller did, from the hash state). On error the session
	// is left as it was, for a retry or AbortSession.
	FinishSession(ctx context.Context, sess Session, d Digest) (StagedBlob, error)
	// AbortSession removes whatever session id stored (files, parts,
	// multipart uploads); an absent session is no error.
	AbortSession(ctx context.Context, sess Session) error
	// OpenSession reads the sess.Offset bytes written so far, for hashing
	// with an algorithm whose state is not kept (sha512). Backends that
	// cannot read an unfinished session return ErrNotSupported; the caller
	// then finishes the session and reads the staged blob.
	OpenSession(ctx context.Context, sess Session) (io.ReadCloser, error)

	// Discard removes a staged blob that will not be recorded.
	Discard(ctx context.Context, b StagedBlob)

	// place makes staged blob b final under its digest's lock, inside the
	// group commit (groupcommit.go): the directory renames it into its
	// shard and returns the shard to fsync once per batch; S3 has nothing
	// to do (the object is final already) and returns "".
	place(b StagedBlob) (syncDir string, err error)
	// syncPlaced makes the placements of a batch durable (the shards'
	// fsync); called once per name place returned.
	syncPlaced(syncDir string) error
}

// URLer is the optional capability of a BlobStore to hand clients a URL of
// a blob's bytes, valid for ttl (S3: a presigned GET). Blob GET answers
// with a redirect to it when the backend has it and redirects are on.
type URLer interface {
	URL(ctx context.Context, ref BlobRef, ttl time.Duration) (string, error)
}

// ErrNotSupported says a BlobStore cannot do what was asked (an optional
// capability); the caller falls back.
var ErrNotSupported = errors.New("not supported by this blob store")

// BlobRef names the stored bytes of a blob: its digest, and the object key
// when the record holds one ("" on the directory backend, whose paths
// follow from the digest).
type BlobRef struct {
	Digest Digest
	Key    string
}

// StoredObject is one blob object Walk found. On the directory backend
// Digest is set and Key is ""; on S3 Key is the object key and Digest is ""
// (an object's name does not say its content: the blob records say which
// key holds which digest).
type StoredObject struct {
	Ref      BlobRef
	Size     int64
	Modified time.Time
}

// Session is an upload session as a BlobStore sees it: its id, the bytes
// durably written so far, and the backend's state from the upload record.
type Session struct {
	ID     string
	Offset int64
	State  []byte
}

// SessionWriter appends to an upload session. Bytes written count only once
// Commit returns: it makes them durable and returns the session's new
// backend state, to be recorded with the new offset. Abort (after a failed
// write) forgets what was written since AppendSession. Exactly one of
// Commit and Abort is called, after which the writer is done.
type SessionWriter interface {
	io.Writer
	Commit() (state []byte, err error)
	Abort() error
}

// ErrBlobStoreMismatch is returned by Open when the data directory's blobs
// are recorded in another blob store than the one given: serving it would
// serve an empty (or a stranger's) store.
var ErrBlobStoreMismatch = errors.New("the data directory's blobs are in another blob store")

// blobStoreKey is the key in the meta bucket that records the Location of
// the data directory's blob store. A meta.db without it predates blob
// stores: its blobs are in the directory.
var blobStoreKey = []byte("blobstore")

// recordedBlobStore returns the recorded Location, DirLocation when none is.
func recordedBlobStore(tx *bolt.Tx) string {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return DirLocation
	}
	if v := meta.Get(blobStoreKey); v != nil {
		return string(v)
	}
	return DirLocation
}

// checkBlobStore records loc as the blob store of a data directory that
// has none recorded yet and no blob stored in the directory, and refuses
// (ErrBlobStoreMismatch) a loc other than the recorded one.
func checkBlobStore(tx *bolt.Tx, loc string) error {
	meta := tx.Bucket(bucketMeta)
	rec := meta.Get(blobStoreKey)
	if rec == nil {
		if loc != DirLocation {
			if k, _ := tx.Bucket(bucketBlobs).Cursor().First(); k != nil {
				return fmt.Errorf("%w: its blobs are in the directory (%s), not %s", ErrBlobStoreMismatch, DirLocation, loc)
			}
		}
		return setBlobStore(tx, loc)
	}
	if string(rec) != loc && migratingTo(tx) != loc {
		return fmt.Errorf("%w: they are in %s, not %s", ErrBlobStoreMismatch, rec, loc)
	}
	return nil
}

// setBlobStore records loc as the data directory's blob store (what a
// migration does once every blob is in loc).
func setBlobStore(tx *bolt.Tx, loc string) error {
	return tx.Bucket(bucketMeta).Put(blobStoreKey, []byte(loc))
}

// BlobStore returns the store's blob store.
func (s *Store) BlobStore() BlobStore { return s.blobs }

// blobRef returns where blob d's bytes are, from its record (ErrBlobUnknown
// without one).
func blobRef(tx *bolt.Tx, d Digest) (BlobRef, error) {
	v := tx.Bucket(bucketBlobs).Get([]byte(d))
	if v == nil {
		return BlobRef{}, ErrBlobUnknown
	}
	var rec blobRecord
	if err := decode(v, &rec); err != nil {
		return BlobRef{}, fmt.Errorf("blob record %s: %w", d, err)
	}
	return BlobRef{Digest: d, Key: rec.Key}, nil
}

// BlobStoreOptions are the settings of a blob store that are not part of
// its Location: secrets, and how clients reach it.
type BlobStoreOptions struct {
	// CredentialsFile holds an S3 access key id and secret (see
	// docs/storage.md); "" takes them from AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY.
	CredentialsFile string
	// PublicEndpoint is the S3 endpoint URL clients are redirected to, when
	// it differs from the one berth uses.
	PublicEndpoint string
}

// OpenBlobStore returns the blob store at location ("dir", "" or an
// s3:// URL) for the data directory dir.
func OpenBlobStore(dir, location string, opts BlobStoreOptions) (BlobStore, error) {
	switch {
	case location == "" || location == DirLocation:
		return DirBlobs(dir), nil
	case strings.HasPrefix(location, "s3://"):
		return openS3Blobs(dir, location, opts)
	}
	return nil, fmt.Errorf("blob store %q: want %q or s3://bucket/prefix?endpoint=…", location, DirLocation)
}

// stageLocalFile turns tmp, a verified and synced file of blob d in
// DATA/uploads, into a staged blob of the store's blob store: the file
// itself on the directory (placement renames it), else a new object
// written from it, after which tmp is removed. Fill and import bring blobs
// in this way.
func (s *Store) stageLocalFile(tmp string, d Digest, size int64) (StagedBlob, error) {
	if !s.keyedBlobs() {
		return StagedBlob{Digest: d, Size: size, tmp: tmp}, nil
	}
	f, err := os.Open(tmp)
	if err != nil {
		return StagedBlob{}, fmt.Errorf("open staged blob %s: %w", d, err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	return s.blobs.Write(context.Background(), d, size, f)
}
