package auth

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// ThrottledError is returned by Authenticate while an account is locked out
// for one remote address, while the address is, or while too many password
// checks are already waiting; the HTTP layer answers 429 with Retry-After.
type ThrottledError struct {
	RetryAfter time.Duration
	// Busy is set when the refusal is the server's load (too many password
	// checks at once), not the caller's failures.
	Busy bool
}

func (e *ThrottledError) Error() string {
	if e.Busy {
		return fmt.Sprintf("too many password checks under way; retry in %s", e.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("too many failed sign-ins; retry in %s", e.RetryAfter.Round(time.Second))
}

// Limits of the sign-in throttle.
const (
	// maxFailures is per (account, address): about five guesses a minute
	// at one account from one address.
	maxFailures = 5
	// maxAddressFailures is per address, whatever the account names: it
	// bounds guessing across names (a spray of known names, or random
	// unknown ones, which would otherwise each start a fresh count). It is
	// higher than maxFailures so that one person's typos do not lock out
	// everyone behind the same NAT.
	maxAddressFailures = 20
	failureWindow      = time.Minute
	throttleCapacity   = 8192
)

// throttle counts sign-in attempts per (account, remote address) and per
// remote address. An attempt counts when it starts, before bcrypt, so that
// parallel attempts are limited as much as serial ones; a success takes its
// own attempt back and forgets the pair's failures (someone who knows the
// password gains nothing from a clean slate), so only failures remain. At a
// key's limit within failureWindow, further attempts are refused until the
// oldest leaves the window.
//
// Memory is bounded: keys are hashes, and at capacity the key whose last
// attempt is oldest is dropped.
type throttle struct {
	mu      sync.Mutex
	entries map[[32]byte][]time.Time // attempts, oldest first, at most the key's limit
}

func newThrottle() *throttle {
	return &throttle{entries: make(map[[32]byte][]time.Time)}
}

// attemptKeys are the throttle keys of one sign-in attempt.
type attemptKeys struct {
	pair, addr [32]byte
}

// keysFor returns the keys of an attempt at account from remote. A leading
// kind byte keeps the two kinds apart whatever the account name holds;
// neither part may contain NUL in practice (remote is an IP address), so
// the separator keeps pairs apart.
func keysFor(account, remote string) attemptKeys {
	return attemptKeys{
		pair: sha256.Sum256([]byte("p" + account + "\x00" + remote)),
		addr: sha256.Sum256([]byte("a" + remote)),
	}
}

// begin counts an attempt at now and returns zero, or returns how long the
// caller must wait, without counting, when either key is at its limit.
func (t *throttle) begin(k attemptKeys, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := max(t.waitLocked(k.pair, maxFailures, now), t.waitLocked(k.addr, maxAddressFailures, now))
	if wait > 0 {
		return wait
	}
	t.addLocked(k.pair, maxFailures, now)
	t.addLocked(k.addr, maxAddressFailures, now)
	return 0
}

// succeeded ends an attempt begun at at that turned out right: the pair's
// failures are forgotten and the address's count of it taken back.
func (t *throttle) succeeded(k attemptKeys, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, k.pair)
	t.removeLocked(k.addr, at)
}

// cancel takes back an attempt begun at at that was never checked (the
// server was too busy): it says nothing about the password.
func (t *throttle) cancel(k attemptKeys, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(k.pair, at)
	t.removeLocked(k.addr, at)
}

func (t *throttle) waitLocked(key [32]byte, limit int, now time.Time) time.Duration {
	recent := pruneFailures(t.entries[key], now)
	if len(recent) < limit {
		return 0
	}
	return recent[len(recent)-limit].Add(failureWindow).Sub(now)
}

func (t *throttle) addLocked(key [32]byte, limit int, now time.Time) {
	times, known := t.entries[key]
	if !known && len(t.entries) >= throttleCapacity {
		t.evict(now)
	}
	times = append(pruneFailures(times, now), now)
	if len(times) > limit {
		times = times[len(times)-limit:]
	}
	t.entries[key] = times
}

// removeLocked removes one attempt made at at, if the key still holds it.
func (t *throttle) removeLocked(key [32]byte, at time.Time) {
	times := t.entries[key]
	for i := len(times) - 1; i >= 0; i-- {
		if times[i].Equal(at) {
			times = append(times[:i:i], times[i+1:]...)
			break
		}
	}
	if len(times) == 0 {
		delete(t.entries, key)
		return
	}
	t.entries[key] = times
}

// evict makes room for one entry: keys with no attempt in the window go
// first; if none, the key whose last attempt is oldest.
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

// pruneFailures drops attempts that left the window.
func pruneFailures(times []time.Time, now time.Time) []time.Time {
	for len(times) > 0 && now.Sub(times[0]) >= failureWindow {
		times = times[1:]
	}
	return times
}
