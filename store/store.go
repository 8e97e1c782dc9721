package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// schemaVersion is the layout of meta.db this code reads and writes.
const schemaVersion = 2

// ErrLocked is returned by Open when another process holds meta.db.
var ErrLocked = errors.New("data directory is in use by another berth process")

// ErrNotDataDir is returned by Open with Options.MustExist for a directory
// that holds no meta.db (or does not exist).
var ErrNotDataDir = errors.New("not a berth data directory")

// Store is the registry's state in one data directory. It is safe for
// concurrent use by many goroutines; only one process may open a data
// directory at a time.
type Store struct {
	dir string
	db  *bolt.DB
	// blobs holds the bytes of blobs (blobstore.go): DATA/blobs, or S3.
	blobs BlobStore
	// route is blobs: the directory and a keyed store, each blob read
	// from where its record says (blobstore_routed.go).
	route *routedBlobs

	// digestLocks serialise the steps that must not interleave for one
	// digest: placing a blob file and recording it, against removing the
	// record and the file (GC, verify --repair). One lock per digest
	// (keylock.go).
	digestLocks keyLocks
	// uploads serialise the calls on one upload session, one lock per
	// session (keylock.go). A commit holds its session's lock and then
	// a digest lock; nothing takes them the other way round.
	uploads keyLocks
	// starts tracks sessions whose records are still being committed
	// (uploadstart.go).
	starts uploadStarts

	// authGen counts committed changes of users and rules (AuthGeneration).
	authGen atomic.Uint64

	// now is time.Now, replaceable so tests can age records.
	now func() time.Time

	// gc serialises garbage collections and holds the pins (gc.go).
	gc gcState
	// commits batches concurrent blob and manifest commits (groupcommit.go).
	commits groupCommit
	// staged names the files in DATA/uploads that are hard links of an
	// import's source files (import.go): they carry the source's old
	// modification time, so GC must not take them for abandoned uploads.
	staged sync.Map

	// hooks is the list of webhook endpoints, consulted by every change to
	// decide whether it records events (webhooks.go).
	hooks        atomic.Pointer[[]Webhook]
	hooksVersion atomic.Uint64
	// mirrorsVersion counts changes of the mirror list (MirrorsVersion).
	mirrorsVersion atomic.Uint64
	// wake is closed when events or endpoints change (OutboxChanged).
	wakeMu sync.Mutex
	wake   chan struct{}

	// immutable is the list of immutability rules (policy.go); pulls holds
	// the last-pull times not yet written (pulls.go).
	immutable atomic.Pointer[[]ImmutableRule]
	pulls     pullLog
	// pullCache holds manifests pulls read, valid while no write commits
	// (pullcache.go).
	pullCache pullCache
	// tagChecks holds mirror tag confirmations not yet written (tagchecks.go).
	tagChecks tagCheckLog
	// quotas holds the quota limits by kind and name (quota.go).
	quotas atomic.Pointer[map[string]int64]
	// spaceLow refuses pushes: the free-space watermark found nothing
	// more to prune (space.go).
	spaceLow atomic.Bool
}

// Options adjust Open.
type Options struct {
	// ReadOnly opens meta.db without taking the writer lock.
	ReadOnly bool
	// LockTimeout bounds the wait for another process's lock; zero means
	// one second.
	LockTimeout time.Duration
	// MustExist refuses, with ErrNotDataDir, a directory without meta.db
	// instead of making it a new, empty registry: what a maintenance
	// command run with a wrong --data must not do.
	MustExist bool
	// Blobs is where blob bytes live; nil means the directory DATA/blobs.
	// Open records its Location in meta.db on first use and refuses a
	// different one later (ErrBlobStoreMismatch).
	Blobs BlobStore
	// BlobOptions open the other store of an unfinished migration
	// (MigrateBlobs): its credentials, as Blobs was given them.
	BlobOptions BlobStoreOptions
}

// Open opens (creating when needed, unless opts.MustExist) the data
// directory dir: DATA/meta.db, DATA/blobs and DATA/uploads. It returns
// ErrLocked when another process has the directory open, and ErrNotDataDir
// (MustExist) when dir holds no meta.db.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MustExist {
		if _, err := os.Stat(MetaPath(dir)); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no meta.db", ErrNotDataDir, dir)
		}
	}
	for _, d := range []string{dir, BlobsDir(dir), UploadsDir(dir)} {
		if err := mkdirSynced(d); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(MetaPath(dir), 0o600, &bolt.Options{
		Timeout:      timeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("open meta.db: %w", err)
	}
	s := &Store{dir: dir, db: db, now: time.Now, blobs: opts.Blobs}
	if s.blobs == nil {
		// A maintenance command: the blobs are where the data directory
		// says they are.
		loc := DirLocation
		db.View(func(tx *bolt.Tx) error { loc = recordedBlobStore(tx); return nil })
		if s.blobs, err = OpenBlobStore(dir, loc, BlobStoreOptions{}); err != nil {
			db.Close()
			return nil, err
		}
	}
	s.route = routeBlobs(dir, s.blobs)
	s.blobs = s.route
	if opts.ReadOnly {
		// A read-only open cannot migrate, and this code reads only the
		// current layout.
		if err := s.checkSchemaReadOnly(); err != nil {
			db.Close()
			return nil, err
		}
	} else {
		if err := s.init(); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.openMigrationTarget(opts.BlobOptions); err != nil {
		db.Close()
		return nil, err
	}
	if err := errors.Join(s.loadHooks(), s.loadImmutable(), s.loadQuotas()); err != nil && !opts.ReadOnly {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init creates the buckets, checks the schema version, and refuses records
// that would let one user sign in as another or name a repository outside
// the grammar (validateAuth).
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get([]byte("schema"))
		switch {
		case v == nil:
			if err := meta.Put([]byte("schema"), []byte{schemaVersion}); err != nil {
				return err
			}
		case len(v) != 1 || v[0] > schemaVersion:
			return fmt.Errorf("meta.db has schema %v, newer than this berth understands (%d)", v, schemaVersion)
		case v[0] < schemaVersion:
			if err := migrate(tx, v[0]); err != nil {
				return err
			}
		}
		if err := checkBlobStore(tx, s.blobs.Location()); err != nil {
			return err
		}
		return validateAuth(tx)
	})
}

// Close closes meta.db. Running transactions finish first.
func (s *Store) Close() error {
	s.starts.wg.Wait() // session records still being committed
	return errors.Join(s.FlushPulls(), s.db.Close())
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) lockDigest(d Digest) func() { return s.digestLocks.lock(string(d)) }

func (s *Store) lockUpload(id string) func() { return s.uploads.lock(id) }

// LockShared takes a shared lock on the meta.db of the data directory dir,
// which conflicts with the exclusive one Open takes: while it is held no
// berth process can open dir. It returns ErrLocked when a process has dir
// open. A meta.db that is absent, damaged or not bbolt is held by nobody
// and cannot be opened by a server either: then it returns a release that
// does nothing. Call release when done.
func LockShared(dir string) (release func(), err error) {
	db, err := bolt.Open(MetaPath(dir), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, ErrLocked
	case err != nil:
		return func() {}, nil
	}
	return func() { db.Close() }, nil
}

// Records calls fn with every record of meta.db, bucket by bucket and key
// by key in order, in one read transaction: for dumps that compare two
// stores (tests, debugging). k and v are valid only during the call.
func (s *Store) Records(fn func(bucket string, k, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return fn(string(name), k, v) })
		})
	})
}
