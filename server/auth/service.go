package auth

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/store"
)

// dummyHash is what a password for an unknown user is checked against, so
// that the answer takes as long as for a known one. It only has to cost
// PasswordCost; a fixed hash of a random password, made once, saves every
// start the 50-100 ms of making one (no password matches it, and none needs
// to).
const dummyHash = "$2a$10$mtueFdqzFArYVjctZykaSODBRK3oh4iJ.iKua76WpOClqvkIq96jy"

// ErrBadCredentials is returned for a wrong user name or password and for
// an unknown, revoked or foreign refresh token. It never says which.
var ErrBadCredentials = errors.New("bad credentials")

// Defaults of Options.
const (
	DefaultIssuer         = "berth"
	DefaultTTL            = 5 * time.Minute
	DefaultRefreshTTL     = store.DefaultRefreshTokenLifetime
	DefaultRefreshPerUser = 50
)

// Options configure a Service.
type Options struct {
	// Issuer is the "iss" of the tokens; DefaultIssuer when empty.
	Issuer string
	// TTL is the lifetime of access tokens; DefaultTTL when zero.
	TTL time.Duration
	// AnonymousPull lets the anonymous caller pull (--anonymous-pull).
	AnonymousPull bool
	// RefreshTTL is the lifetime of refresh tokens;
	// DefaultRefreshTTL when zero.
	RefreshTTL time.Duration
	// RefreshPerUser caps the refresh tokens a user holds: issuing one more
	// revokes the oldest. DefaultRefreshPerUser when zero.
	RefreshPerUser int
	// PasswordConcurrency is how many bcrypt checks may run at once;
	// DefaultPasswordConcurrency() when zero.
	PasswordConcurrency int
}

// Service is berth's authentication and authorization: password checks
// with a cache and a throttle, access rules reloaded when they change,
// access tokens and refresh tokens. It is safe for concurrent use.
type Service struct {
	store     *store.Store
	opts      Options
	signer    *Signer
	dummyHash []byte // checked for unknown users, so they cost as much time
	cache     *credentialCache
	throttle  *throttle
	limiter   *checkLimiter
	users     *userCache
	checks    singleflight.Group // bcrypt checks under way, by cache entry
	ldap      *ldapState
	now       func() time.Time

	reloadMu sync.Mutex
	rules    atomic.Pointer[compiledRules]
}

// compiledRules is an Authorizer with the rules version it was built from.
type compiledRules struct {
	version uint64
	authz   *Authorizer
}

// NewService returns a Service over st. On first start it creates the
// token signing key and stores it in st.
func NewService(st *store.Store, opts Options) (*Service, error) {
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = DefaultRefreshTTL
	}
	if opts.RefreshPerUser <= 0 {
		opts.RefreshPerUser = DefaultRefreshPerUser
	}
	if opts.PasswordConcurrency <= 0 {
		opts.PasswordConcurrency = DefaultPasswordConcurrency()
	}
	signer, err := loadOrCreateSigner(st, opts.Issuer)
	if err != nil {
		return nil, err
	}
	cache, err := newCredentialCache()
	if err != nil {
		return nil, err
	}
	return &Service{
		store:     st,
		opts:      opts,
		signer:    signer,
		dummyHash: []byte(dummyHash),
		cache:     cache,
		throttle:  newThrottle(),
		limiter:   newCheckLimiter(opts.PasswordConcurrency),
		users:     newUserCache(),
		ldap:      newLDAPState(),
		now:       time.Now,
	}, nil
}

// Authenticate checks a user name and password sent from remote (the
// client's address) and returns the user. It returns ErrBadCredentials for
// an unknown user or a wrong password, taking as long for both (bcrypt at
// PasswordCost; hashes imported at another cost differ), and
// *ThrottledError after too many failures for the pair (name, remote) or
// for remote, or when too many checks are waiting for bcrypt. Successful
// checks are cached for a minute, keyed so that a password change misses
// the cache; other errors come from the store.
//
// The order is the point: a credential verified within the minute is
// answered from memory, before the throttle and without bcrypt, so a
// signed-in client is served while a flood of wrong guesses is refused;
// everything else counts against the throttle before bcrypt starts, and
// bcrypt runs under the limiter.
func (s *Service) Authenticate(name, password, remote string) (store.User, error) {
	return s.authenticate(name, password, remote, false)
}

// AuthenticateForToken is Authenticate for the token endpoint: a directory
// user is always checked against the directory, never answered from the
// cache, so that a user removed there gets no new token.
func (s *Service) AuthenticateForToken(name, password, remote string) (store.User, error) {
	return s.authenticate(name, password, remote, true)
}

func (s *Service) authenticate(name, password, remote string, fresh bool) (store.User, error) {
	now := s.now()
	keys := keysFor(name, remote)
	u, err := s.users.user(s.store, name)
	if errors.Is(err, store.ErrUserUnknown) {
		c, err := s.ldapConfig()
		if err != nil {
			return store.User{}, err
		}
		if c != nil {
			return s.authenticateLDAP(c, name, password, keys, now, fresh)
		}
		if wait := s.throttle.begin(keys, now); wait > 0 {
			return store.User{}, &ThrottledError{RetryAfter: wait}
		}
		if _, err := s.limiter.compare(s.dummyHash, []byte(password)); err != nil {
			s.throttle.cancel(keys, now)
			return store.User{}, err
		}
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	entry := s.cache.entry(u, password)
	if s.cache.contains(entry, now) {
		return u, nil
	}
	// Concurrent checks of the same credentials (a client's parallel layer
	// requests right after start, or when the entry expires) share one
	// attempt and one bcrypt instead of each paying for it.
	match, err, _ := s.checks.Do(string(entry[:]), func() (any, error) {
		if wait := s.throttle.begin(keys, now); wait > 0 {
			return false, &ThrottledError{RetryAfter: wait}
		}
		match, err := s.limiter.compare(u.PasswordHash, []byte(password))
		switch {
		case err != nil:
			s.throttle.cancel(keys, now)
		case match:
			s.cache.add(entry, now)
			s.throttle.succeeded(keys, now)
		}
		return match, err
	})
	if err != nil {
		return store.User{}, err
	}
	if !match.(bool) {
		return store.User{}, ErrBadCredentials
	}
	return u, nil
}

// Authorize returns what u may do of what scopes ask, one Access per
// resource (scopes for the same resource merge), leaving out resources where
// nothing is granted. The zero store.User is the anonymous caller. Asking
// for more is not an error: the answer is less. The result is never nil, so
// it encodes as "access": []. Errors come from reading the rules.
//
// A directory user (IsDirectoryUser) is a member of the teams its LDAP
// groups map to, as of its last sign-in.
func (s *Service) Authorize(u store.User, scopes []Scope) ([]Access, error) {
	authz, err := s.Authorizer()
	if err != nil {
		return nil, err
	}
	return authorizeAs(authz, s.principal(u, authz), scopes), nil
}

// authorizeAs is Authorize for principal p under authz.
func authorizeAs(authz *Authorizer, p Principal, scopes []Scope) []Access {
	out := []Access{}
	for _, sc := range scopes {
		granted := authz.AllowedTo(p, sc.Type, sc.Name, sc.Actions)
		if len(granted) > 0 {
			out = mergeAccess(out, Access{Type: sc.Type, Name: sc.Name, Actions: granted})
		}
	}
	return out
}

func mergeAccess(list []Access, a Access) []Access {
	for i := range list {
		if list[i].Type == a.Type && list[i].Name == a.Name {
			for _, act := range a.Actions {
				if !slices.Contains(list[i].Actions, act) {
					list[i].Actions = append(list[i].Actions, act)
				}
			}
			return list
		}
	}
	return append(list, a)
}

// PullFilter returns a check of which repositories account ("" for
// anonymous) may pull under the current rules: what /v2/_catalog lists and
// where a blob may be mounted from. An account that no longer exists may
// pull nothing. The check reads no store, so it may run inside a store
// transaction; it keeps the rules of the moment it was made.
func (s *Service) PullFilter(account string) (func(repo string) bool, error) {
	nothing := func(string) bool { return false }
	var u store.User
	if account != "" {
		var err error
		u, err = s.store.User(account)
		if errors.Is(err, store.ErrUserUnknown) {
			// A directory user, if it signed in through LDAP.
			s.ldap.mu.Lock()
			_, known := s.ldap.groups[account]
			s.ldap.mu.Unlock()
			if !known {
				return nothing, nil
			}
			u, err = store.User{Name: account}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	authz, err := s.Authorizer()
	if err != nil {
		return nil, err
	}
	return pullFilterOf(authz, s.principal(u, authz)), nil
}

// pullFilterOf is PullFilter for principal p under authz.
func pullFilterOf(authz *Authorizer, p Principal) func(repo string) bool {
	pull := []string{ActionPull}
	return func(repo string) bool {
		return len(authz.AllowedTo(p, TypeRepository, repo, pull)) > 0
	}
}

// Authorizer returns the Authorizer for the rules in the store now. It
// compares the store's AuthGeneration (in memory) on each call and
// recompiles only when it moved, so `berth acl add` through the control socket takes effect on
// the next request. An error means the rules could not be read or compiled
// (an invalid rule in meta.db): callers refuse rather than guess.
func (s *Service) Authorizer() (*Authorizer, error) {
	// The generation moves on with every change of users or rules through
	// this store: reading it costs no meta.db transaction.
	version := s.store.AuthGeneration()
	if cur := s.rules.Load(); cur != nil && cur.version == version {
		return cur.authz, nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if cur := s.rules.Load(); cur != nil && cur.version == version {
		return cur.authz, nil
	}
	// The version was read before the rules, so the rules are at least that
	// new; a change in between only causes one more reload.
	authz, err := LoadAuthorizer(s.store, s.opts.AnonymousPull)
	if err != nil {
		return nil, err
	}
	s.rules.Store(&compiledRules{version: version, authz: authz})
	return authz, nil
}

// IssueToken signs an access token for u (the zero User for anonymous)
// with audience service and the given access, valid for Options.TTL. The
// token carries u's Epoch, so that VerifyToken refuses it once u changes
// password or is deleted.
func (s *Service) IssueToken(u store.User, service string, access []Access) (Token, error) {
	return s.signer.issue(u.Name, u.Epoch, service, access, s.opts.TTL)
}

// VerifyToken checks a Bearer token issued by this registry for service and
// returns its subject ("" for anonymous) and access. Every refusal wraps
// ErrTokenInvalid; see Signer.Verify. Besides the signature and claims, a
// signed-in subject must still exist with the epoch the token was issued
// at: a token dies the moment its user is deleted or changes password. That
// check is a look-up in the in-memory user cache, no meta.db read.
func (s *Service) VerifyToken(raw, service string) (account string, access []Access, err error) {
	v, err := s.signer.verify(raw, service)
	if err != nil {
		return "", nil, err
	}
	if v.account == "" {
		return "", v.access, nil
	}
	u, err := s.users.user(s.store, v.account)
	switch {
	case errors.Is(err, store.ErrUserUnknown) && v.epoch == 0:
		// A directory user's token: good while LDAP stays configured and
		// no local user took the name. The directory was asked when the
		// token was issued, at most a token TTL ago.
		if c, err := s.ldapConfig(); err != nil || c == nil {
			return "", nil, fmt.Errorf("%w: LDAP sign-in is off", ErrTokenInvalid)
		}
		return v.account, v.access, nil
	case errors.Is(err, store.ErrUserUnknown):
		return "", nil, fmt.Errorf("%w: user %s no longer exists", ErrTokenInvalid, v.account)
	case err != nil:
		return "", nil, err
	case u.Epoch != v.epoch:
		return "", nil, fmt.Errorf("%w: issued before %s's password changed", ErrTokenInvalid, v.account)
	}
	return v.account, v.access, nil
}

// LoadAuthorizer compiles the access model and rules in st now.
func LoadAuthorizer(st *store.Store, anonymousPull bool) (*Authorizer, error) {
	rules, err := st.Rules()
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	m, err := st.AccessModel()
	if err != nil {
		return nil, fmt.Errorf("read access model: %w", err)
	}
	authz, err := NewModelAuthorizer(m, rules, anonymousPull)
	if err != nil {
		return nil, fmt.Errorf("compile access model and rules: %w", err)
	}
	return authz, nil
}
