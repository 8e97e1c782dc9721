package auth

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Defaults of the password-check limiter.
const (
	// checkQueuePerSlot is how many checks may wait per running one; more
	// are refused at once rather than queued.
	checkQueuePerSlot = 8
	// checkMaxWait is how long a check may wait for a slot before it is
	// refused: a caller gets 429 in seconds instead of a request that hangs.
	checkMaxWait = 2 * time.Second
)

// DefaultPasswordConcurrency is how many bcrypt checks run at once when
// Options.PasswordConcurrency is zero: half the CPUs Go uses, at least one,
// so that a flood of sign-ins leaves the other half to serve pulls.
func DefaultPasswordConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// checkLimiter bounds the bcrypt comparisons running at once. bcrypt is
// the one thing a caller without an account can make the server spend
// tens of milliseconds of CPU on, so it is the lever a flood pulls; the
// limiter turns a flood into a short queue and quick refusals instead of
// every CPU busy. It is safe for concurrent use.
type checkLimiter struct {
	slots   chan struct{} // one element per running check
	queue   chan struct{} // one element per waiting check
	maxWait time.Duration

	running atomic.Int64
	peak    atomic.Int64
	checks  atomic.Uint64
	refused atomic.Uint64
}

func newCheckLimiter(limit int) *checkLimiter {
	return &checkLimiter{
		slots:   make(chan struct{}, limit),
		queue:   make(chan struct{}, limit*checkQueuePerSlot),
		maxWait: checkMaxWait,
	}
}

// compare reports whether password matches hash, once a slot is free. It
// returns a *ThrottledError with Busy set, without comparing, when the
// queue is full or the wait exceeds maxWait.
func (l *checkLimiter) compare(hash, password []byte) (bool, error) {
	if !l.acquire() {
		l.refused.Add(1)
		return false, &ThrottledError{RetryAfter: time.Second, Busy: true}
	}
	n := l.running.Add(1)
	for {
		p := l.peak.Load()
		if n <= p || l.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer func() {
		l.running.Add(-1)
		<-l.slots
	}()
	l.checks.Add(1)
	return bcrypt.CompareHashAndPassword(hash, password) == nil, nil
}

func (l *checkLimiter) acquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case l.queue <- struct{}{}:
	default:
		return false
	}
	defer func() { <-l.queue }()
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-timer.C:
		return false
	}
}

// PasswordCheckStats describe the password checks of a Service, for
// /metrics.
type PasswordCheckStats struct {
	Limit   int    // checks allowed to run at once
	Running int    // checks running now
	Peak    int    // the most that ever ran at once
	Checks  uint64 // bcrypt comparisons made
	Refused uint64 // checks refused because too many waited
}

// PasswordCheckStats returns the counters of the bcrypt limiter. Safe for
// concurrent use.
func (s *Service) PasswordCheckStats() PasswordCheckStats {
	l := s.limiter
	return PasswordCheckStats{
		Limit:   cap(l.slots),
		Running: int(l.running.Load()),
		Peak:    int(l.peak.Load()),
		Checks:  l.checks.Load(),
		Refused: l.refused.Load(),
	}
}
