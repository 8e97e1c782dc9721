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
	if _, err := svc.Authenticate("alice", "s3cret", attacker); !errors.As(err, &throttled) {
		t.Fatalf("one more failure throttles again: %v", err)
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
	first := throttleKey("account-0", "addr")
	for i := range throttleCapacity + 100 {
		th.fail(throttleKey("account-"+strconv.Itoa(i), "addr"), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(th.entries); n > throttleCapacity {
		t.Fatalf("%d entries, capacity %d", n, throttleCapacity)
	}
	if _, ok := th.entries[first]; ok {
		t.Fatal("the pair with the oldest failure was kept")
	}
	last := throttleKey("account-"+strconv.Itoa(throttleCapacity+99), "addr")
	if _, ok := th.entries[last]; !ok {
		t.Fatal("the newest pair was evicted")
	}
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
