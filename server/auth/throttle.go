package auth

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// ThrottledError is returned by Authenticate while an account is locked out
// for one remote address; the HTTP layer answers 429 with Retry-After.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; retry in %s", e.RetryAfter.Round(time.Second))
}

// Limits of the sign-in throttle.
const (
	maxFailures      = 5
	failureWindow    = time.Minute
	throttleCapacity = 8192
)

// throttle counts failed sign-ins per (account, remote address). After
// maxFailures failures within failureWindow, further attempts are refused
// until the oldest of them leaves the window, which allows about five
// guesses a minute per pair. A success forgets the pair's failures: someone
// who knows the password gains nothing from a clean slate.
//
// Memory is bounded: keys are hashes of the pair, and at capacity the pair
// whose last failure is oldest is dropped.
type throttle struct {
	mu      sync.Mutex
	entries map[[32]byte][]time.Time // failures, oldest first, at most maxFailures
}

func newThrottle() *throttle {
	return &throttle{entries: make(map[[32]byte][]time.Time)}
}

// throttleKey hashes the pair so an entry has a fixed size however long the
// account name a client sends. Neither part may contain NUL in practice
// (remote is an IP address), so the separator keeps pairs apart.
func throttleKey(account, remote string) [32]byte {
	return sha256.Sum256([]byte(account + "\x00" + remote))
}

// wait returns how long the pair must wait before it may try again, zero
// when it may try now.
func (t *throttle) wait(key [32]byte, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	recent := pruneFailures(t.entries[key], now)
	if len(recent) < maxFailures {
		return 0
	}
	return recent[0].Add(failureWindow).Sub(now)
}

// fail records a failed attempt.
func (t *throttle) fail(key [32]byte, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	times, known := t.entries[key]
	if !known && len(t.entries) >= throttleCapacity {
		t.evict(now)
	}
	times = append(pruneFailures(times, now), now)
	if len(times) > maxFailures {
		times = times[len(times)-maxFailures:]
	}
	t.entries[key] = times
}

// forget drops the pair's failures after a success.
func (t *throttle) forget(key [32]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// evict makes room for one entry: pairs with no failure in the window go
// first; if none, the pair whose last failure is oldest.
func (t *throttle) evict(now time.Time) {
	var oldestKey [32]byte
	var oldest time.Time
	for k, times := range t.entries {
		last := times[len(times)-1]
		if now.Sub(last) >= failureWindow {
			delete(t.entries, k)
			continue
		}
		if oldest.IsZero() || last.Before(oldest) {
			oldestKey, oldest = k, last
		}
	}
	if len(t.entries) >= throttleCapacity {
		delete(t.entries, oldestKey)
	}
}

// pruneFailures drops failures that left the window.
func pruneFailures(times []time.Time, now time.Time) []time.Time {
	for len(times) > 0 && now.Sub(times[0]) >= failureWindow {
		times = times[1:]
	}
	return times
}
