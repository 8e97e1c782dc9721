package auth

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/store"
)

// TestService_UnknownUserCostsBcrypt pins what makes unknown users as slow
// as known ones: a real bcrypt comparison at the cost berth hashes with.
func TestService_UnknownUserCostsBcrypt(t *testing.T) {
	svc, _ := newTestService(t, openTestStore(t), Options{})
	cost, err := bcrypt.Cost(svc.dummyHash)
	if err != nil || cost != PasswordCost {
		t.Fatalf("dummy hash cost = %d, %v; want %d", cost, err, PasswordCost)
	}
}

func TestService_Throttle(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "s3cret", false)
	svc, clock := newTestService(t, st, Options{})
	const attacker, other = "198.51.100.7", "198.51.100.8"

	for i := range maxFailures {
		if _, err := svc.Authenticate("alice", "guess", attacker); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want ErrBadCredentials", i+1, err)
		}
		clock.Advance(time.Second)
	}
	var throttled *ThrottledError
	_, err := svc.Authenticate("alice", "s3cret", attacker)
	if !errors.As(err, &throttled) {
		t.Fatalf("after %d failures, even the right password: %v, want *ThrottledError", maxFailures, err)
	}
	if want := failureWindow - maxFailures*time.Second; throttled.RetryAfter != want {
		t.Fatalf("RetryAfter = %s, want %s", throttled.RetryAfter, want)
	}
	if _, err := svc.Authenticate("alice", "s3cret", other); err != nil {
		t.Fatalf("another address is not throttled: %v", err)
	}
	if _, err := svc.Authenticate("bob", "x", attacker); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("another account from the same address: %v, want ErrBadCredentials", err)
	}

	clock.Advance(throttled.RetryAfter)
	if _, err := svc.Authenticate("alice", "guess", attacker); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("once the oldest failure left the window: %v, want ErrBadCredentials", err)
	}
	if _, err := svc.Authenticate("alice", "guess", attacker); !errors.As(err, &throttled) {
		t.Fatalf("one more failure throttles again: %v", err)
	}
	// The right password was verified from the other address within the
	// minute: it is answered from the cache, which teaches a guesser
	// nothing (only the right password hits it).
	if _, err := svc.Authenticate("alice", "s3cret", attacker); err != nil {
		t.Fatalf("a credential verified within the minute, while throttled: %v", err)
	}

	clock.Advance(failureWindow)
	if _, err := svc.Authenticate("alice", "s3cret", attacker); err != nil {
		t.Fatalf("after a quiet minute: %v", err)
	}
	// A success forgets earlier failures.
	for range maxFailures - 1 {
		svc.Authenticate("alice", "guess", attacker)
	}
	if _, err := svc.Authenticate("alice", "s3cret", attacker); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate("alice", "guess", attacker); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("failures before a success still count: %v", err)
	}
}

func TestThrottle_BoundedMemory(t *testing.T) {
	th := newThrottle()
	now := time.Now()
	keys := func(i int) attemptKeys { return keysFor("account-"+strconv.Itoa(i), "addr-"+strconv.Itoa(i)) }
	for i := range throttleCapacity + 100 {
		if wait := th.begin(keys(i), now.Add(time.Duration(i)*time.Millisecond)); wait != 0 {
			t.Fatalf("attempt %d: a first attempt must wait %s", i, wait)
		}
	}
	if n := len(th.entries); n > throttleCapacity {
		t.Fatalf("%d entries, capacity %d", n, throttleCapacity)
	}
	if _, ok := th.entries[keys(0).pair]; ok {
		t.Fatal("the pair with the oldest failure was kept")
	}
	if _, ok := th.entries[keys(throttleCapacity+99).pair]; !ok {
		t.Fatal("the newest pair was evicted")
	}
}

// TestService_ThrottleCountsAtStart sends more parallel guesses than the
// throttle allows: an attempt counts before bcrypt, so only maxFailures
// of them reach bcrypt, however many run at once.
func TestService_ThrottleCountsAtStart(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "s3cret", false)
	svc, _ := newTestService(t, st, Options{})
	const attempts = 16
	errs := make([]error, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		// Different guesses, so the shared check of equal credentials
		// does not merge them.
		wg.Go(func() { _, errs[i] = svc.Authenticate("alice", "guess-"+strconv.Itoa(i), "198.51.100.7") })
	}
	wg.Wait()
	bad, throttled := 0, 0
	for i, err := range errs {
		var te *ThrottledError
		switch {
		case errors.Is(err, ErrBadCredentials):
			bad++
		case errors.As(err, &te) && !te.Busy:
			throttled++
		default:
			t.Errorf("attempt %d: %v, want ErrBadCredentials or *ThrottledError", i, err)
		}
	}
	if bad != maxFailures || throttled != attempts-maxFailures {
		t.Errorf("%d checked and %d throttled of %d parallel guesses, want %d checked", bad, throttled, attempts, maxFailures)
	}
	if got := svc.PasswordCheckStats().Checks; got != maxFailures {
		t.Errorf("%d bcrypt comparisons, want %d", got, maxFailures)
	}
}

// TestService_UnknownNamesThrottledPerAddress floods one address with names
// that do not exist: each is a fresh (account, address) pair, so only the
// per-address count stops them. A credential verified before the flood is
// still answered, from the cache, without bcrypt.
func TestService_UnknownNamesThrottledPerAddress(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "s3cret", false)
	svc, clock := newTestService(t, st, Options{})
	const flooder = "203.0.113.9"
	if _, err := svc.Authenticate("alice", "s3cret", flooder); err != nil {
		t.Fatal(err)
	}
	for i := range maxAddressFailures + 5 {
		_, err := svc.Authenticate("nobody-"+strconv.Itoa(i), "pw", flooder)
		var te *ThrottledError
		if i < maxAddressFailures && !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("unknown name %d: %v, want ErrBadCredentials", i, err)
		}
		if i >= maxAddressFailures && !errors.As(err, &te) {
			t.Fatalf("unknown name %d from one address: %v, want *ThrottledError", i, err)
		}
	}
	checks := svc.PasswordCheckStats().Checks
	if _, err := svc.Authenticate("alice", "s3cret", flooder); err != nil {
		t.Errorf("a cached credential from the flooding address: %v", err)
	}
	if got := svc.PasswordCheckStats().Checks; got != checks {
		t.Errorf("the cached credential cost %d bcrypt comparisons", got-checks)
	}
	var te *ThrottledError
	if _, err := svc.Authenticate("alice", "not-cached", flooder); !errors.As(err, &te) {
		t.Errorf("an uncached password from the flooding address: %v, want *ThrottledError", err)
	}
	if _, err := svc.Authenticate("nobody", "pw", "203.0.113.10"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("another address: %v, want ErrBadCredentials", err)
	}
	clock.Advance(failureWindow)
	if _, err := svc.Authenticate("nobody", "pw", flooder); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a minute later: %v, want ErrBadCredentials", err)
	}
}

// TestService_SuccessesDoNotCountAgainstAddress signs in many users from
// one address (an office behind NAT): successes take their attempt back.
func TestService_SuccessesDoNotCountAgainstAddress(t *testing.T) {
	st := openTestStore(t)
	svc, _ := newTestService(t, st, Options{})
	for i := range maxAddressFailures * 2 {
		name := "user-" + strconv.Itoa(i)
		addUser(t, st, name, "pw", false)
		if _, err := svc.Authenticate(name, "pw", "192.0.2.50"); err != nil {
			t.Fatalf("sign-in %d from a shared address: %v", i, err)
		}
	}
}

// TestService_PasswordConcurrencyLimit floods the bcrypt limiter from many
// addresses (so the throttle does not stop them): no more checks run at
// once than the limit, and the ones that cannot wait are refused as busy.
func TestService_PasswordConcurrencyLimit(t *testing.T) {
	st := openTestStore(t)
	svc, _ := newTestService(t, st, Options{PasswordConcurrency: 1})
	svc.limiter.maxWait = 50 * time.Millisecond
	const callers = 32
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { _, errs[i] = svc.Authenticate("nobody", "pw", "10.1.0."+strconv.Itoa(i)) })
	}
	wg.Wait()
	busy := 0
	for i, err := range errs {
		var te *ThrottledError
		switch {
		case errors.As(err, &te) && te.Busy:
			busy++
		case !errors.Is(err, ErrBadCredentials):
			t.Errorf("caller %d: %v", i, err)
		}
	}
	stats := svc.PasswordCheckStats()
	if stats.Limit != 1 || stats.Peak != 1 || stats.Running != 0 {
		t.Errorf("stats %+v, want limit 1, peak 1, none running", stats)
	}
	if busy == 0 || uint64(busy) != stats.Refused || stats.Checks+stats.Refused != callers {
		t.Errorf("%d refused as busy, stats %+v: want some refused, and every caller either checked or refused", busy, stats)
	}
	t.Logf("%d callers, limit 1: %d checked, %d refused as busy", callers, stats.Checks, stats.Refused)
}

func TestService_CredentialCache(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "old", false)
	svc, clock := newTestService(t, st, Options{})

	mustAuthenticate(t, svc, "alice", "old")
	u, _ := st.User("alice")
	if !svc.cache.contains(svc.cache.entry(u, "old"), clock.Now()) {
		t.Fatal("a successful check was not cached")
	}
	if svc.cache.contains(svc.cache.entry(u, "wrong"), clock.Now()) {
		t.Fatal("the cache holds a password that was never checked")
	}
	clock.Advance(credentialCacheTTL)
	if svc.cache.contains(svc.cache.entry(u, "old"), clock.Now()) {
		t.Fatal("the cache entry outlived its TTL")
	}
	mustAuthenticate(t, svc, "alice", "old")

	// A password change must end the cached old password at once.
	setPassword(t, st, "alice", "new")
	if _, err := svc.Authenticate("alice", "old", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password after change: %v, want ErrBadCredentials", err)
	}
	mustAuthenticate(t, svc, "alice", "new")

	// So must deleting the user, and re-creating it with another password.
	if err := st.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate("alice", "new", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("deleted user: %v, want ErrBadCredentials", err)
	}
	addUser(t, st, "alice", "newer", false)
	if _, err := svc.Authenticate("alice", "new", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("re-created user with the previous password: %v, want ErrBadCredentials", err)
	}
	mustAuthenticate(t, svc, "alice", "newer")
}

func TestCredentialCache_Bounded(t *testing.T) {
	c, err := newCredentialCache()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range credentialCacheCapacity + 10 {
		c.add(c.entry(store.User{Name: "u" + strconv.Itoa(i)}, "pw"), now)
	}
	if n := len(c.entries); n > credentialCacheCapacity {
		t.Fatalf("%d entries, capacity %d", n, credentialCacheCapacity)
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(h); cost != PasswordCost || bcrypt.CompareHashAndPassword(h, []byte("s3cret")) != nil {
		t.Fatalf("hash %s does not check out at cost %d", h, PasswordCost)
	}
	long := make([]byte, 73)
	if _, err := HashPassword(string(long)); !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("73-byte password: %v, want ErrPasswordTooLong", err)
	}
}

// TestDummyHashCostsAsMuchAsARealOne keeps the fixed hash for unknown users
// at the cost of the hashes berth makes, so timing does not tell them apart.
func TestDummyHashCostsAsMuchAsARealOne(t *testing.T) {
	cost, err := bcrypt.Cost([]byte(dummyHash))
	if err != nil {
		t.Fatalf("dummyHash is not a bcrypt hash: %v", err)
	}
	if cost != PasswordCost {
		t.Fatalf("dummyHash has cost %d, PasswordCost is %d", cost, PasswordCost)
	}
}

// TestService_ConcurrentChecksShareOneBcrypt sends the right and a wrong
// password for one user from many goroutines on a cold cache: the shared
// check must give each caller its own answer.
func TestService_ConcurrentChecksShareOneBcrypt(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "right", false)
	svc, _ := newTestService(t, st, Options{})
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			password := "right"
			if i%4 == 3 {
				password = "wrong"
			}
			_, errs[i] = svc.Authenticate("alice", password, "10.0.0."+strconv.Itoa(i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		wantBad := i%4 == 3
		if wantBad != errors.Is(err, ErrBadCredentials) || (!wantBad && err != nil) {
			t.Errorf("caller %d (wrong password: %v): %v", i, wantBad, err)
		}
	}
}
