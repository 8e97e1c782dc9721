package store

import (
	"slices"
	"sync"
)

// keyLocks gives every key (an upload session's ID, a blob's digest) a
// mutex of its own, created on first use and dropped when nobody holds or
// waits for it.
//
// Upload sessions: a request body streams while its session's lock is
// held, so a client that stalls holds up only its own session. A lock
// shared between sessions (a stripe) would let one stalled client freeze
// every session hashed beside it, and GC with them. Maintenance (GC,
// verify) only ever tries these locks and passes over a busy session,
// which is receiving data and so not idle anyway.
//
// Digests: a GC batch holds the locks of its 128 digests while it deletes
// their records and files and syncs the directories. With 64 stripes that
// batch held nearly every stripe, so every push waited for it; with a lock
// per digest a push waits only for the digests it writes.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int // holders and waiters; the entry goes when it drops to 0
}

// acquire returns the lock of key, counted as used until release.
func (l *keyLocks) acquire(key string) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*keyLock)
	}
	kl := l.m[key]
	if kl == nil {
		kl = &keyLock{}
		l.m[key] = kl
	}
	kl.users++
	return kl
}

func (l *keyLocks) release(key string, kl *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kl.users--; kl.users == 0 {
		delete(l.m, key)
	}
}

// lock waits for key's lock and returns its unlock.
func (l *keyLocks) lock(key string) func() {
	kl := l.acquire(key)
	kl.Lock()
	return l.unlocker(key, kl)
}

// unlocker returns the unlock of key's held lock kl.
func (l *keyLocks) unlocker(key string, kl *keyLock) func() {
	return func() {
		kl.Unlock()
		l.release(key, kl)
	}
}

// lockAll waits for the locks of keys (duplicates allowed) and returns the
// unlock of all of them. It takes them in sorted order; every path that
// holds more than one key's lock takes them here, and every other path
// holds one at a time, so no two paths can wait on each other in a cycle.
func (l *keyLocks) lockAll(keys []string) func() {
	sorted := slices.Compact(slices.Sorted(slices.Values(keys)))
	unlocks := make([]func(), len(sorted))
	for i, k := range sorted {
		unlocks[i] = l.lock(k)
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

// tryLock takes key's lock if it is free; ok is false when another holds it.
func (l *keyLocks) tryLock(key string) (unlock func(), ok bool) {
	kl := l.acquire(key)
	if !kl.TryLock() {
		l.release(key, kl)
		return nil, false
	}
	return l.unlocker(key, kl), true
}

// tryLockAll takes the free locks among keys and returns the keys it holds
// and the unlock of all of them. It never waits, so it cannot deadlock with
// a request holding one session's lock.
func (l *keyLocks) tryLockAll(keys []string) (held []string, unlock func()) {
	var unlocks []func()
	for _, k := range keys {
		if u, ok := l.tryLock(k); ok {
			held = append(held, k)
			unlocks = append(unlocks, u)
		}
	}
	return held, func() {
		for _, u := range unlocks {
			u()
		}
	}
}
