package store

import "sync"

// sessionLocks gives every upload session a mutex of its own, created on
// first use and dropped when nobody holds or waits for it. A request body
// streams while its session's lock is held, so a client that stalls holds
// up only its own session: a lock shared between sessions (a stripe) would
// let one stalled client freeze every session hashed beside it, and GC with
// them. Maintenance (GC, verify) only ever tries these locks and passes
// over a busy session, which is receiving data and so not idle anyway.
type sessionLocks struct {
	mu sync.Mutex
	m  map[string]*sessionLock
}

type sessionLock struct {
	sync.Mutex
	users int // holders and waiters; the entry goes when it drops to 0
}

// acquire returns the lock of id, counted as used until release.
func (l *sessionLocks) acquire(id string) *sessionLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*sessionLock)
	}
	sl := l.m[id]
	if sl == nil {
		sl = &sessionLock{}
		l.m[id] = sl
	}
	sl.users++
	return sl
}

func (l *sessionLocks) release(id string, sl *sessionLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sl.users--; sl.users == 0 {
		delete(l.m, id)
	}
}

// lock waits for session id's lock and returns its unlock.
func (l *sessionLocks) lock(id string) func() {
	sl := l.acquire(id)
	sl.Lock()
	return func() {
		sl.Unlock()
		l.release(id, sl)
	}
}

// tryLock takes session id's lock if it is free; ok is false when a
// request holds it.
func (l *sessionLocks) tryLock(id string) (unlock func(), ok bool) {
	sl := l.acquire(id)
	if !sl.TryLock() {
		l.release(id, sl)
		return nil, false
	}
	return func() {
		sl.Unlock()
		l.release(id, sl)
	}, true
}

// tryLockAll takes the free locks among ids and returns the ids it holds
// and the unlock of all of them. It never waits, so it cannot deadlock with
// a request holding one session's lock.
func (l *sessionLocks) tryLockAll(ids []string) (held []string, unlock func()) {
	var unlocks []func()
	for _, id := range ids {
		if u, ok := l.tryLock(id); ok {
			held = append(held, id)
			unlocks = append(unlocks, u)
		}
	}
	return held, func() {
		for _, u := range unlocks {
			u()
		}
	}
}
