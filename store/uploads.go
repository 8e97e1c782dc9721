package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Upload is the state of an upload session.
type Upload struct {
	ID      string
	Repo    string
	Offset  int64 // bytes received so far
	Started time.Time
	Updated time.Time
}

// copyBufferSize is the chunk size for streaming request bodies to disk:
// large enough to keep syscalls rare, small enough that a stalled upload,
// which holds the one buffer its read is waiting to fill, costs little.
const copyBufferSize = 64 << 10

// copyBuffers recycles the buffers of CopyHashed, so the memory of an
// upload that ended (or stalled and was cut off) goes back to the next one.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// DefaultMaxUploadsPerOwner is the default cap of open upload sessions per
// owner (serve --max-uploads-per-user). A docker push opens one per layer
// it sends at once; hundreds stay open only when clients abandon them.
const DefaultMaxUploadsPerOwner = 100

// StartUpload opens an upload session in repo for owner (an account name,
// or any key the caller counts clients by) and returns it. When max > 0
// and owner already has max sessions open, it fails with ErrTooManyUploads
// and creates nothing. The session's record is committed in the
// background (uploadstart.go): every other call on the session waits for
// it, and a crash before it loses only the session, never content.
func (s *Store) StartUpload(repo, owner string, max int) (Upload, error) {
	if err := s.checkSpace(); err != nil {
		return Upload{}, err
	}
	id, err := newUploadID()
	if err != nil {
		return Upload{}, err
	}
	err = s.starts.reserve(owner, id, max, func(starting []string) (n int, err error) {
		err = s.db.View(func(tx *bolt.Tx) error {
			n = countPrefix(tx.Bucket(bucketUploadOwners), prefix(owner), max) + len(starting)
			if n < max {
				return nil
			}
			// Near the cap: a starting session whose record this snapshot
			// already holds was counted twice.
			uploads := tx.Bucket(bucketUploads)
			for _, sid := range starting {
				if uploads.Get([]byte(sid)) != nil {
					n--
				}
			}
			return nil
		})
		return n, err
	})
	if err != nil {
		return Upload{}, err
	}
	// Held until the record is committed: GC passes over a locked session.
	unlock := s.lockUpload(id)
	ctx := context.Background()
	backend, err := s.blobs.StartSession(ctx, id)
	if err != nil {
		unlock()
		s.starts.release(owner, id)
		return Upload{}, err
	}
	// An empty session keeps no hash state: none means sha256 of nothing
	// (restoreHash).
	now := s.now()
	rec := uploadRecord{Repo: repo, Owner: owner, Backend: backend, Started: now.UnixNano(), Updated: now.UnixNano()}
	v, err := encode(rec)
	if err != nil {
		s.blobs.AbortSession(ctx, Session{ID: id, State: backend})
		unlock()
		s.starts.release(owner, id)
		return Upload{}, err
	}
	s.commitStart(id, owner, max, v, backend, unlock)
	return Upload{ID: id, Repo: repo, Started: now, Updated: now}, nil
}

// countPrefix counts the keys of b that start with p, stopping at limit.
func countPrefix(b *bolt.Bucket, p []byte, limit int) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && n < limit; k, _ = c.Next() {
		n++
	}
	return n
}

// deleteUpload removes session id's record and its owner entry; a session
// without a record is no error.
func deleteUpload(tx *bolt.Tx, id []byte) error {
	uploads := tx.Bucket(bucketUploads)
	v := uploads.Get(id)
	if v == nil {
		return nil
	}
	var rec uploadRecord
	if err := decode(v, &rec); err == nil {
		if err := tx.Bucket(bucketUploadOwners).Delete(key(rec.Owner, string(id))); err != nil {
			return err
		}
	}
	return uploads.Delete(id)
}

// UploadStatus returns the session id of repo, or ErrUploadUnknown.
func (s *Store) UploadStatus(repo, id string) (Upload, error) {
	s.starts.wait(id)
	rec, err := s.upload(repo, id)
	if err != nil {
		return Upload{}, err
	}
	return rec.public(id), nil
}

// AppendUpload streams r onto the end of session id. start is where the
// client says the chunk begins, or -1 when it did not say; a chunk that does
// not begin at the current offset fails with *OffsetError and changes
// nothing. Bytes are hashed as they are written and made durable before the
// new offset is recorded, so an acknowledged chunk survives a crash. When r
// fails midway, the bytes received so far are kept and the error returned:
// the client can ask for the offset and resume. Calls for one session are
// serialised.
func (s *Store) AppendUpload(repo, id string, start int64, r io.Reader) (Upload, error) {
	if err := s.checkSpace(); err != nil {
		return Upload{}, err
	}
	unlock := s.lockUpload(id)
	defer unlock()
	rec, err := s.upload(repo, id)
	if err != nil {
		return Upload{}, err
	}
	if start >= 0 && start != rec.Offset {
		return Upload{}, &OffsetError{Offset: rec.Offset}
	}
	r, err = s.quotaReader(repo, rec.Offset, "", r)
	if err != nil {
		return Upload{}, err
	}
	rec, copyErr := s.appendChunk(id, rec, r)
	if qe := (*QuotaError)(nil); errors.As(copyErr, &qe) {
		return Upload{}, s.dropOverQuota(id, copyErr)
	}
	if rec.Updated == 0 {
		return Upload{}, copyErr
	}
	if err := s.putUploadIfPresent(id, rec); err != nil {
		return Upload{}, err
	}
	return rec.public(id), copyErr
}

// appendChunk writes r at rec.Offset of the session. It returns the
// record advanced by what was durably written; a zero Updated means nothing
// is to be recorded.
func (s *Store) appendChunk(id string, rec uploadRecord, r io.Reader) (uploadRecord, error) {
	h, err := restoreHash(rec.HashState)
	if err != nil {
		return uploadRecord{}, err
	}
	w, err := s.blobs.AppendSession(context.Background(), rec.session(id))
	if err != nil {
		return uploadRecord{}, err
	}
	n, readErr, writeErr := CopyHashed(w, h, r)
	if writeErr != nil {
		w.Abort()
		return uploadRecord{}, writeErr
	}
	backend, err := w.Commit()
	if err != nil {
		return uploadRecord{}, err
	}
	rec.Backend = backend
	rec.Updated = s.now().UnixNano()
	if n == 0 {
		return rec, readErr // nothing appended: the hash state is as kept
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return uploadRecord{}, err
	}
	rec.Offset += n
	rec.HashState = state
	return rec, readErr
}

// restoreHash returns the sha256 of a session's first bytes from its kept
// state; an empty state (a session without data) is sha256 of nothing.
func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) == 0 {
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

// session is the record as its blob store sees it.
func (r uploadRecord) session(id string) Session {
	return Session{ID: id, Offset: r.Offset, State: r.Backend}
}

// CopyHashed copies r into w and h and returns the bytes copied. It tells a failing reader (the client
// went away) from a failing writer (the disk), because only the first leaves
// the written bytes usable.
//
// Two things keep a push from being one core's read, write and sha256 in
// series: the buffer is filled before it is written, so the file sees large
// writes even when a chunked body arrives in small pieces, and hashing runs
// on its own goroutine, overlapping the next read and write. Buffers come
// from copyBuffers and go back as soon as they are hashed, so a read that
// waits on a slow client holds one buffer, not the pipeline's three. When it
// returns, h has seen exactly the n bytes written.
//
// A body that fits in one buffer (a small blob) is written and hashed in
// line: no goroutine and channels for one buffer's work.
func CopyHashed(w io.Writer, h hash.Hash, r io.Reader) (n int64, readErr, writeErr error) {
	first := copyBuffers.Get().(*[]byte)
	m, err := fill(r, *first)
	if err != nil {
		defer copyBuffers.Put(first)
		if m > 0 {
			if _, werr := w.Write((*first)[:m]); werr != nil {
				return 0, nil, werr
			}
			h.Write((*first)[:m])
		}
		if err == io.EOF {
			err = nil
		}
		return int64(m), err, nil
	}
	const inFlight = 2 // buffers written and waiting for the hasher
	toHash := make(chan *[]byte, inFlight)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range toHash {
			h.Write(*b)
			*b = (*b)[:cap(*b)]
			copyBuffers.Put(b)
		}
	}()
	defer func() {
		close(toHash)
		<-hashed
	}()
	for buf := first; ; buf, m = nil, 0 {
		if buf == nil {
			buf = copyBuffers.Get().(*[]byte)
			m, err = fill(r, *buf)
		}
		if m > 0 {
			if _, werr := w.Write((*buf)[:m]); werr != nil {
				copyBuffers.Put(buf)
				return n, nil, werr
			}
			*buf = (*buf)[:m]
			toHash <- buf
			n += int64(m)
		} else {
			copyBuffers.Put(buf)
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// fill reads into buf until it is full or r fails. Unlike io.ReadFull it
// passes r's error on unchanged, so a body cut short (io.ErrUnexpectedEOF
// from the HTTP layer) is never mistaken for a body that ended.
func fill(r io.Reader, buf []byte) (int, error) {
	m := 0
	for m < len(buf) {
		k, err := r.Read(buf[m:])
		m += k
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// CommitUpload appends the final chunk r (may be empty) to session id and
// finishes it as blob d: the content must hash to d, else ErrDigestMismatch
// and the session is removed. On success the blob is in place and linked in
// repo.
func (s *Store) CommitUpload(repo, id string, start int64, r io.Reader, d Digest) (BlobInfo, error) {
	if err := s.checkSpace(); err != nil {
		return BlobInfo{}, err
	}
	unlock := s.lockUpload(id)
	defer unlock()
	rec, err := s.upload(repo, id)
	if err != nil {
		return BlobInfo{}, err
	}
	if start >= 0 && start != rec.Offset {
		return BlobInfo{}, &OffsetError{Offset: rec.Offset}
	}
	if r, err = s.quotaReader(repo, rec.Offset, d, r); err != nil {
		return BlobInfo{}, err
	}
	next, err := s.appendChunk(id, rec, r)
	if qe := (*QuotaError)(nil); errors.As(err, &qe) {
		return BlobInfo{}, s.dropOverQuota(id, err)
	}
	if err != nil {
		if next.Updated != 0 {
			_ = s.putUploadIfPresent(id, next)
		}
		return BlobInfo{}, err
	}
	staged, err := s.finishUpload(id, next, d)
	if err != nil {
		return BlobInfo{}, err
	}
	// The blob's records and the end of the session share one commit.
	if err := s.placeBlobsAnd(repo, []StagedBlob{staged}, func(tx *bolt.Tx) error { return deleteUpload(tx, []byte(id)) }); err != nil {
		if qe := (*QuotaError)(nil); errors.As(err, &qe) {
			return BlobInfo{}, s.dropOverQuota(id, err)
		}
		if staged.key != "" {
			// Not recorded: the finished object is nobody's.
			s.blobs.Discard(context.Background(), staged)
		}
		return BlobInfo{}, err
	}
	return BlobInfo{Digest: d, Size: next.Offset, Created: s.now()}, nil
}

// finishUpload checks that session id's content hashes to d and turns it
// into a staged blob. On a mismatch the session is removed and
// ErrDigestMismatch returned. The kept hash state is sha256; a sha512
// upload is rehashed from its bytes, which is rare enough not to justify
// hashing every upload twice: from the session when the blob store can read
// it, else from the finished blob.
func (s *Store) finishUpload(id string, rec uploadRecord, d Digest) (StagedBlob, error) {
	ctx := context.Background()
	alg := d.Algorithm()
	mismatch := func(got Digest) error {
		s.removeUpload(id)
		return fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, d)
	}
	if alg == SHA256 {
		h, err := restoreHash(rec.HashState)
		if err != nil {
			return StagedBlob{}, err
		}
		if got := digestFromHash(alg, h); got != d {
			return StagedBlob{}, mismatch(got)
		}
		return s.blobs.FinishSession(ctx, rec.session(id), d)
	}
	if NewHash(alg) == nil {
		return StagedBlob{}, fmt.Errorf("%w: %q", ErrDigestUnsupported, alg)
	}
	r, err := s.blobs.OpenSession(ctx, rec.session(id))
	if errors.Is(err, ErrNotSupported) {
		staged, err := s.blobs.FinishSession(ctx, rec.session(id), d)
		if err != nil {
			return StagedBlob{}, err
		}
		got, err := s.hashStaged(ctx, staged)
		if err == nil && got != d {
			s.blobs.Discard(ctx, staged)
			return StagedBlob{}, mismatch(got)
		}
		return staged, err
	}
	if err != nil {
		return StagedBlob{}, err
	}
	got, err := hashReader(alg, r)
	r.Close()
	if err != nil {
		return StagedBlob{}, err
	}
	if got != d {
		return StagedBlob{}, mismatch(got)
	}
	return s.blobs.FinishSession(ctx, rec.session(id), d)
}

// hashStaged hashes the bytes of a keyed staged blob.
func (s *Store) hashStaged(ctx context.Context, b StagedBlob) (Digest, error) {
	r, err := s.blobs.Open(ctx, BlobRef{Digest: b.Digest, Key: b.key}, 0, -1)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return hashReader(b.Digest.Algorithm(), r)
}

// hashReader returns the digest (of algorithm alg) of what r holds.
func hashReader(alg string, r io.Reader) (Digest, error) {
	h := NewHash(alg)
	if _, err := io.CopyBuffer(h, r, make([]byte, 256<<10)); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return digestFromHash(alg, h), nil
}

// PutBlob stores r as blob d in repo in one step (a monolithic upload). size
// is the expected length or -1 when unknown; a body of another length fails
// with ErrSizeInvalid, one that does not hash to d with ErrDigestMismatch.
func (s *Store) PutBlob(repo string, d Digest, size int64, r io.Reader) (BlobInfo, error) {
	if err := s.checkSpace(); err != nil {
		return BlobInfo{}, err
	}
	r, err := s.quotaReader(repo, 0, d, r)
	if err != nil {
		return BlobInfo{}, err
	}
	ctx := context.Background()
	staged, err := s.blobs.Write(ctx, d, size, r)
	if err != nil {
		return BlobInfo{}, err
	}
	if err := s.placeBlob(repo, staged); err != nil {
		s.blobs.Discard(ctx, staged)
		return BlobInfo{}, err
	}
	return BlobInfo{Digest: d, Size: staged.Size, Created: s.now()}, nil
}

// CancelUpload ends session id of repo and removes its data.
func (s *Store) CancelUpload(repo, id string) error {
	unlock := s.lockUpload(id)
	defer unlock()
	if _, err := s.upload(repo, id); err != nil {
		return err
	}
	return s.removeUpload(id)
}

// removeUpload removes session id's record, then what its blob store holds
// of it.
func (s *Store) removeUpload(id string) error {
	var rec uploadRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketUploads).Get([]byte(id)); v != nil {
			if err := decode(v, &rec); err != nil {
				return err
			}
		}
		return deleteUpload(tx, []byte(id))
	})
	if err != nil {
		return err
	}
	return s.blobs.AbortSession(context.Background(), rec.session(id))
}

func (s *Store) upload(repo, id string) (uploadRecord, error) {
	var rec uploadRecord
	if !ValidUploadID(id) {
		return rec, ErrUploadUnknown
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUploads).Get([]byte(id))
		if v == nil {
			return ErrUploadUnknown
		}
		return decode(v, &rec)
	})
	if err != nil {
		return rec, err
	}
	if rec.Repo != repo {
		return rec, ErrUploadUnknown
	}
	return rec, nil
}

// putUploadIfPresent records progress unless the session was removed
// meanwhile (cancelled, or collected as idle).
func (s *Store) putUploadIfPresent(id string, rec uploadRecord) error {
	v, err := encode(rec)
	if err != nil {
		return err
	}
	return s.groupUpdate(nil, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUploads)
		if b.Get([]byte(id)) == nil {
			return ErrUploadUnknown
		}
		return b.Put([]byte(id), v)
	})
}

func (r uploadRecord) public(id string) Upload {
	return Upload{ID: id, Repo: r.Repo, Offset: r.Offset, Started: time.Unix(0, r.Started), Updated: time.Unix(0, r.Updated)}
}

func (s *Store) uploadPath(id string) string { return filepath.Join(UploadsDir(s.dir), id) }

// ValidUploadID reports whether id has the form StartUpload creates, so
// that a client-supplied id can never name a path outside DATA/uploads.
func ValidUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	return isLowerHex(id)
}

func newUploadID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate upload id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
