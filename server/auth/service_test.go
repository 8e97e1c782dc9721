package auth

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/store"
)

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newTestService(t *testing.T, st *store.Store, opts Options) (*Service, *testClock) {
	t.Helper()
	svc, err := NewService(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now()}
	svc.now = clock.Now
	svc.signer.now = clock.Now
	return svc, clock
}

// addUser stores a user with a cheap bcrypt hash, to keep tests fast.
func addUser(t *testing.T, st *store.Store, name, password string, admin bool) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(store.User{Name: name, PasswordHash: h, Admin: admin}); err != nil {
		t.Fatal(err)
	}
}

func setPassword(t *testing.T, st *store.Store, name, password string) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(name, h); err != nil {
		t.Fatal(err)
	}
}

func TestService_Authenticate(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "s3cret", false)
	addUser(t, st, "root", "r00t", true)
	svc, _ := newTestService(t, st, Options{})

	tests := []struct {
		name, user, password string
		wantErr              error
		wantAdmin            bool
	}{
		{"right password", "alice", "s3cret", nil, false},
		{"admin", "root", "r00t", nil, true},
		{"wrong password", "alice", "S3cret", ErrBadCredentials, false},
		{"empty password", "alice", "", ErrBadCredentials, false},
		{"unknown user", "mallory", "s3cret", ErrBadCredentials, false},
		{"empty user", "", "s3cret", ErrBadCredentials, false},
		{"another user's password", "root", "s3cret", ErrBadCredentials, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := svc.Authenticate(tc.user, tc.password, "192.0.2.1")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Authenticate(%q, %q) = %v, want %v", tc.user, tc.password, err, tc.wantErr)
			}
			if err == nil && (u.Name != tc.user || u.Admin != tc.wantAdmin) {
				t.Fatalf("Authenticate(%q) = %+v", tc.user, u)
			}
		})
	}
}

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

func TestService_RefreshTokens(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "pw", false)
	addUser(t, st, "bob", "pw", false)
	svc, _ := newTestService(t, st, Options{})
	issue := func(name string) string {
		t.Helper()
		u, err := st.User(name)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := svc.IssueRefresh(u, testService)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	tok := issue("alice")
	if u, err := svc.RedeemRefresh(tok, testService); err != nil || u.Name != "alice" {
		t.Fatalf("RedeemRefresh = %+v, %v", u, err)
	}
	if _, err := svc.RedeemRefresh(tok, "other-service"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("other service: %v, want ErrBadCredentials", err)
	}
	if _, err := svc.RedeemRefresh(tok+"x", testService); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("altered token: %v, want ErrBadCredentials", err)
	}
	if _, err := svc.RedeemRefresh("", testService); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("empty token: %v, want ErrBadCredentials", err)
	}

	bobs := issue("bob")
	setPassword(t, st, "alice", "changed")
	if _, err := svc.RedeemRefresh(tok, testService); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after password change: %v, want ErrBadCredentials", err)
	}
	if _, err := svc.RedeemRefresh(bobs, testService); err != nil {
		t.Fatalf("bob's token after alice's password change: %v", err)
	}
	if err := st.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RedeemRefresh(bobs, testService); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after user deletion: %v, want ErrBadCredentials", err)
	}
}

func TestService_AuthorizeReloadsRules(t *testing.T) {
	st := openTestStore(t)
	svc, _ := newTestService(t, st, Options{})
	alice := store.User{Name: "alice"}
	scopes, err := ParseScopes([]string{"repository:bob/app:pull,push repository(plugin):alice/app:push registry:catalog:* repository:alice/app:pull"})
	if err != nil {
		t.Fatal(err)
	}

	got, err := svc.Authorize(alice, scopes)
	if err != nil {
		t.Fatal(err)
	}
	want := []Access{
		{Type: TypeRepository, Name: "bob/app", Actions: []string{"pull"}},
		{Type: TypeRepository, Name: "alice/app", Actions: []string{"push", "pull"}},
		{Type: TypeRegistry, Name: CatalogName, Actions: []string{"*"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("default policy: Authorize = %+v, want %+v", got, want)
	}

	// A rule added while the service runs applies to the next call.
	if err := st.InsertRule(store.Rule{Account: "alice", Name: "bob/*", Actions: []string{"*"}}, -1); err != nil {
		t.Fatal(err)
	}
	got, err = svc.Authorize(alice, scopes[:1])
	if err != nil {
		t.Fatal(err)
	}
	if want := []Access{{Type: TypeRepository, Name: "bob/app", Actions: []string{"pull", "push"}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after acl add: Authorize = %+v, want %+v", got, want)
	}

	if got, err := svc.Authorize(store.User{}, scopes); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("anonymous: Authorize = %#v, %v; want an empty, non-nil list", got, err)
	}

	// An invalid rule in meta.db is an error, never a guess.
	if err := st.InsertRule(store.Rule{Name: "/[/", Actions: []string{"pull"}}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authorize(alice, scopes); !errors.Is(err, ErrRuleInvalid) {
		t.Fatalf("with an invalid rule: %v, want ErrRuleInvalid", err)
	}
}

func TestService_FilterPullable(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "pw", false)
	addUser(t, st, "root", "pw", true)
	if err := st.ReplaceRules([]store.Rule{{Account: "/.+/", Name: "${account}/*", Actions: []string{"pull"}}}); err != nil {
		t.Fatal(err)
	}
	svc, _ := newTestService(t, st, Options{})
	names := []string{"alice/app", "bob/app", "library/alpine"}
	tests := []struct {
		name, account string
		want          []string
	}{
		{"alice", "alice", []string{"alice/app"}},
		{"admin", "root", names},
		{"anonymous", "", nil},
		{"deleted user", "ghost", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svc.FilterPullable(tc.account, names)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("FilterPullable(%q) = %v, %v; want %v", tc.account, got, err, tc.want)
			}
		})
	}
}

func TestService_KeyPersistsAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := NewService(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := first.IssueToken("alice", testService, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != DefaultTTL {
		t.Fatalf("ExpiresIn = %s, want %s", tok.ExpiresIn, DefaultTTL)
	}
	st.Close()

	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	second, err := NewService(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if account, _, err := second.VerifyToken(tok.Raw, testService); err != nil || account != "alice" {
		t.Fatalf("token from before the restart: %q, %v", account, err)
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

func mustAuthenticate(t *testing.T, svc *Service, name, password string) {
	t.Helper()
	if _, err := svc.Authenticate(name, password, "192.0.2.1"); err != nil {
		t.Fatalf("Authenticate(%q, %q): %v", name, password, err)
	}
}
