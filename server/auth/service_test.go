package auth

import (
	"errors"
	"reflect"
	"strconv"
	"sync"
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
		tok, err := svc.IssueRefresh(u, testService, "test")
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

func TestService_PullFilter(t *testing.T) {
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
			pullable, err := svc.PullFilter(tc.account)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range names {
				if pullable(n) {
					got = append(got, n)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PullFilter(%q) lets pull %v; want %v", tc.account, got, tc.want)
			}
		})
	}
}

func TestService_RefreshTokenLifetimeAndCap(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "pw", false)
	svc, clock := newTestService(t, st, Options{RefreshTTL: time.Hour, RefreshPerUser: 2})
	alice, _ := st.User("alice")
	issue := func() string {
		t.Helper()
		tok, err := svc.IssueRefresh(alice, testService, "docker\x1b[31m")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		return tok
	}
	first, second, third := issue(), issue(), issue()
	if _, err := svc.RedeemRefresh(first, testService); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("the oldest of 3 tokens with a cap of 2: %v, want ErrBadCredentials", err)
	}
	for _, tok := range []string{second, third} {
		if _, err := svc.RedeemRefresh(tok, testService); err != nil {
			t.Errorf("a token within the cap: %v", err)
		}
	}
	held, err := st.RefreshTokensOf("alice", clock.Now())
	if err != nil || len(held) != 2 || held[0].Client != "docker[31m" || held[1].LastUsed.IsZero() {
		t.Errorf("RefreshTokensOf = %+v, %v; want 2, client without the escape, last use noted", held, err)
	}
	clock.Advance(time.Hour - 2*time.Second)
	if _, err := svc.RedeemRefresh(third, testService); err != nil {
		t.Errorf("a token just before its lifetime ends: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := svc.RedeemRefresh(second, testService); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a token at the end of its lifetime: %v, want ErrBadCredentials", err)
	}
	clock.Advance(time.Hour)
	if n, err := svc.ExpireRefreshTokens(); err != nil || n != 1 {
		t.Errorf("ExpireRefreshTokens = %d, %v; want the 1 token left", n, err)
	}
}

// TestService_TokenDiesWithItsUser pins that an access token is refused
// the moment its user changes password or is deleted, cached or not.
func TestService_TokenDiesWithItsUser(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "pw", false)
	addUser(t, st, "bob", "pw", false)
	svc, _ := newTestService(t, st, Options{})
	issue := func(name string) string {
		t.Helper()
		u := store.User{}
		if name != "" {
			var err error
			if u, err = st.User(name); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := svc.IssueToken(u, testService, nil)
		if err != nil {
			t.Fatal(err)
		}
		if account, _, err := svc.VerifyToken(tok.Raw, testService); err != nil || account != name {
			t.Fatalf("fresh token of %q: %q, %v", name, account, err)
		}
		return tok.Raw
	}
	alices, bobs, anonymous := issue("alice"), issue("bob"), issue("")

	setPassword(t, st, "alice", "new")
	if _, _, err := svc.VerifyToken(alices, testService); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("alice's token after her password change: %v, want ErrTokenInvalid", err)
	}
	if _, _, err := svc.VerifyToken(bobs, testService); err != nil {
		t.Errorf("bob's token after alice's password change: %v", err)
	}
	issue("alice") // a new one works
	if err := st.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.VerifyToken(bobs, testService); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("bob's token after his deletion: %v, want ErrTokenInvalid", err)
	}
	addUser(t, st, "bob", "pw", false)
	if _, _, err := svc.VerifyToken(bobs, testService); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("the old bob's token for a new bob: %v, want ErrTokenInvalid", err)
	}
	if _, _, err := svc.VerifyToken(anonymous, testService); err != nil {
		t.Errorf("an anonymous token: %v", err)
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
	addUser(t, st, "alice", "pw", false)
	alice, err := st.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := first.IssueToken(alice, testService, nil)
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

func mustAuthenticate(t *testing.T, svc *Service, name, password string) {
	t.Helper()
	if _, err := svc.Authenticate(name, password, "192.0.2.1"); err != nil {
		t.Fatalf("Authenticate(%q, %q): %v", name, password, err)
	}
}

// TestService_Concurrent runs sign-ins, authorizations and rule changes at
// once, for the race detector: the cache, the throttle and the rules reload
// are shared by every request.
func TestService_Concurrent(t *testing.T) {
	st := openTestStore(t)
	addUser(t, st, "alice", "pw", false)
	svc, _ := newTestService(t, st, Options{})
	scopes := []Scope{{Type: TypeRepository, Name: "alice/app", Actions: []string{"pull", "push"}}}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				password := "pw"
				if j%5 == 0 {
					password = "wrong"
				}
				u, err := svc.Authenticate("alice", password, "192.0.2."+strconv.Itoa(i))
				if err != nil && !errors.Is(err, ErrBadCredentials) {
					t.Error(err)
					return
				}
				access, err := svc.Authorize(u, scopes)
				if err != nil {
					t.Error(err)
					return
				}
				if u.Name == "alice" && !Covers(access, TypeRepository, "alice/app", ActionPull) {
					t.Errorf("alice lost pull on her repository: %+v", access)
					return
				}
			}
		}()
	}
	for i := range 10 {
		if err := st.InsertRule(store.Rule{Account: "/.+/", Name: "${account}/*", Actions: []string{"pull"}, Comment: strconv.Itoa(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
