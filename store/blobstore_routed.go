package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// routedBlobs is the Store's BlobStore: the directory DATA/blobs, which
// every data directory has, and at most one keyed blob store (S3), with
// each blob read from where its record says. A record's key says it: ""
// is the directory (whose paths follow from the digest), anything else an
// object of the keyed store. New blobs and upload sessions go to the
// primary, the store the data directory records; a migration (MigrateBlobs)
// turns the primary over to its target at its start, so new pushes land
// there while the blobs already stored are copied, and reads of either kind
// keep working throughout and after. It is safe for concurrent use.
type routedBlobs struct {
	dir     *dirBlobs
	keyed   atomic.Pointer[BlobStore] // nil: none configured
	primary atomic.Pointer[BlobStore] // dir or the keyed store
	migrate sync.Mutex                // held by the running migration
	// inflight holds the keys of objects staged and not yet committed or
	// dropped: GC passes over them whatever their age (an object exists
	// before its record does).
	inflight sync.Map
}

var (
	_ BlobStore     = (*routedBlobs)(nil)
	_ URLer         = (*routedBlobs)(nil)
	_ SessionLister = (*routedBlobs)(nil)
)

// routeBlobs returns the routed blob store of the data directory dir whose
// primary store is primary (the directory, or a keyed store).
func routeBlobs(dir string, primary BlobStore) *routedBlobs {
	r := &routedBlobs{dir: &dirBlobs{dir: dir}}
	if d, ok := primary.(*dirBlobs); ok {
		r.dir = d
	} else {
		r.keyed.Store(&primary)
	}
	r.primary.Store(&primary)
	return r
}

// main returns the store that takes new blobs and sessions.
func (r *routedBlobs) main() BlobStore { return *r.primary.Load() }

// keyedStore returns the keyed store, nil when none is configured.
func (r *routedBlobs) keyedStore() BlobStore {
	if p := r.keyed.Load(); p != nil {
		return *p
	}
	return nil
}

// isKeyed reports whether new blobs go to the keyed store.
func (r *routedBlobs) isKeyed() bool {
	_, dir := r.main().(*dirBlobs)
	return !dir
}

// ErrNoKeyedStore is returned for a blob whose record names an object when
// the server was started without access to its object store (a client gets
// 503, as for ErrStorageUnavailable).
var ErrNoKeyedStore = errors.New("the blob is in an object store this process was not given (--blob-store)")

// of returns the store that holds ref.
func (r *routedBlobs) of(ref BlobRef) (BlobStore, error) {
	if ref.Key == "" {
		return r.dir, nil
	}
	if k := r.keyedStore(); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s is object %s", ErrNoKeyedStore, ref.Digest, ref.Key)
}

func (r *routedBlobs) Location() string { return r.main().Location() }

func (r *routedBlobs) Open(ctx context.Context, ref BlobRef, off, n int64) (io.ReadCloser, error) {
	b, err := r.of(ref)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, ref, off, n)
}

func (r *routedBlobs) Stat(ctx context.Context, ref BlobRef) (int64, error) {
	b, err := r.of(ref)
	if err != nil {
		return 0, err
	}
	return b.Stat(ctx, ref)
}

func (r *routedBlobs) Delete(ctx context.Context, ref BlobRef) error {
	b, err := r.of(ref)
	if err != nil {
		return err
	}
	return b.Delete(ctx, ref)
}

// URL hands out URLs of objects of a keyed store that can; a blob in the
// directory gets ErrNotSupported, and is streamed.
func (r *routedBlobs) URL(ctx context.Context, ref BlobRef, ttl time.Duration) (string, error) {
	if ref.Key == "" {
		return "", ErrNotSupported
	}
	b, err := r.of(ref)
	if err != nil {
		return "", err
	}
	u, ok := b.(URLer)
	if !ok {
		return "", ErrNotSupported
	}
	return u.URL(ctx, ref, ttl)
}

// Walk walks the directory, then the keyed store.
func (r *routedBlobs) Walk(ctx context.Context, fn func(StoredObject) error) error {
	if err := r.dir.Walk(ctx, fn); err != nil {
		return err
	}
	if k := r.keyedStore(); k != nil {
		return k.Walk(ctx, fn)
	}
	return nil
}

func (r *routedBlobs) Write(ctx context.Context, d Digest, size int64, rd io.Reader) (StagedBlob, error) {
	return r.staging(r.main().Write(ctx, d, size, rd))
}

// staging notes the object of a staged blob as in flight.
func (r *routedBlobs) staging(b StagedBlob, err error) (StagedBlob, error) {
	if err == nil && b.key != "" {
		r.inflight.Store(b.key, struct{}{})
	}
	return b, err
}

// settle ends the flight of staged's objects once their commit is over,
// recorded or not (an unrecorded one is an orphan, for GC, by its age).
func (r *routedBlobs) settle(staged []StagedBlob) {
	for _, b := range staged {
		if b.key != "" {
			r.inflight.Delete(b.key)
		}
	}
}

// inFlight reports whether the object key is staged and not yet settled.
func (r *routedBlobs) inFlight(key string) bool {
	_, ok := r.inflight.Load(key)
	return ok
}

// Session states say which store a session is in: the keyed store's state
// behind a 'k', the directory's as it is (nil). Sessions started before a
// migration finish where they began.
const keyedSessionMark = 'k'

func (r *routedBlobs) StartSession(ctx context.Context, id string) ([]byte, error) {
	b := r.main()
	state, err := b.StartSession(ctx, id)
	if err != nil || !r.isKeyedStore(b) {
		return state, err
	}
	return append([]byte{keyedSessionMark}, state...), nil
}

func (r *routedBlobs) isKeyedStore(b BlobStore) bool {
	_, dir := b.(*dirBlobs)
	return !dir
}

// sessionOf returns the store that holds sess, with sess as that store
// knows it.
func (r *routedBlobs) sessionOf(sess Session) (BlobStore, Session, error) {
	if len(sess.State) == 0 || sess.State[0] != keyedSessionMark {
		return r.dir, sess, nil
	}
	k := r.keyedStore()
	if k == nil {
		return nil, sess, fmt.Errorf("%w: upload %s", ErrNoKeyedStore, sess.ID)
	}
	sess.State = sess.State[1:]
	return k, sess, nil
}

func (r *routedBlobs) AppendSession(ctx context.Context, sess Session) (SessionWriter, error) {
	b, sess, err := r.sessionOf(sess)
	if err != nil {
		return nil, err
	}
	w, err := b.AppendSession(ctx, sess)
	if err != nil || b == BlobStore(r.dir) {
		return w, err
	}
	return markedWriter{w}, nil
}

// markedWriter marks the state a keyed session's writer returns.
type markedWriter struct{ SessionWriter }

func (w markedWriter) Commit() ([]byte, error) {
	state, err := w.SessionWriter.Commit()
	if err != nil {
		return state, err
	}
	return append([]byte{keyedSessionMark}, state...), nil
}

func (r *routedBlobs) FinishSession(ctx context.Context, sess Session, d Digest) (StagedBlob, error) {
	b, sess, err := r.sessionOf(sess)
	if err != nil {
		return StagedBlob{}, err
	}
	return r.staging(b.FinishSession(ctx, sess, d))
}

func (r *routedBlobs) AbortSession(ctx context.Context, sess Session) error {
	b, sess, err := r.sessionOf(sess)
	if err != nil {
		return err
	}
	return b.AbortSession(ctx, sess)
}

func (r *routedBlobs) OpenSession(ctx context.Context, sess Session) (io.ReadCloser, error) {
	b, sess, err := r.sessionOf(sess)
	if err != nil {
		return nil, err
	}
	return b.OpenSession(ctx, sess)
}

// stagedIn returns the store that staged b: a keyed store's has a key.
func (r *routedBlobs) stagedIn(b StagedBlob) BlobStore {
	if b.key == "" {
		return r.dir
	}
	if k := r.keyedStore(); k != nil {
		return k
	}
	return r.main()
}

func (r *routedBlobs) Discard(ctx context.Context, b StagedBlob) {
	r.stagedIn(b).Discard(ctx, b)
	r.settle([]StagedBlob{b})
}

func (r *routedBlobs) place(b StagedBlob) (string, error) { return r.stagedIn(b).place(b) }

// syncPlaced syncs what the directory placed; a keyed store places
// nothing ("").
func (r *routedBlobs) syncPlaced(syncDir string) error {
	if syncDir == "" {
		return nil
	}
	return r.dir.syncPlaced(syncDir)
}

// WalkSessions lists the keyed store's sessions, when it can.
func (r *routedBlobs) WalkSessions(ctx context.Context, fn func(StoredSession) error) error {
	if l, ok := r.keyedStore().(SessionLister); ok {
		return l.WalkSessions(ctx, fn)
	}
	return nil
}

func (r *routedBlobs) AbortStored(ctx context.Context, s StoredSession) error {
	if l, ok := r.keyedStore().(SessionLister); ok {
		return l.AbortStored(ctx, s)
	}
	return nil
}

// setKeyed gives the router the keyed store k (a migration's target, or
// the one a data directory records as its migration's).
func (r *routedBlobs) setKeyed(k BlobStore) { r.keyed.Store(&k) }

// setPrimary turns new blobs and sessions over to b.
func (r *routedBlobs) setPrimary(b BlobStore) { r.primary.Store(&b) }
