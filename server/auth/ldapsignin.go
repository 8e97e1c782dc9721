package auth

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// How LDAP sign-in fits the Service. The order: a name that is a local user
// is checked against its local password only; any other name, when LDAP is
// configured, against the directory. A directory user is a store.User with
// Epoch 0 (the store numbers local users' epochs from 1), never stored:
// its access tokens carry epoch 0, it gets no refresh token, so every new
// token is a new check against the directory, and a user removed or
// disabled there is refused at the next token request (or, with Basic
// auth, once the one-minute cache of the check runs out).

// ldapCheckTTL is how long a verified directory sign-in is answered from
// memory, as local credentials are.
const ldapCheckTTL = time.Minute

// maxLDAPEntries bounds the memory of directory users; when full it starts
// over, which costs a directory round trip, never correctness.
const maxLDAPEntries = 4096

// ldapState is the directory side of a Service: the settings as of an
// AuthGeneration, verified sign-ins, and each user's groups at the last one.
type ldapState struct {
	mu       sync.Mutex
	gen      uint64
	loaded   bool
	config   *store.LDAPConfig // nil: LDAP is off
	verified map[[32]byte]time.Time
	groups   map[string][]string // user → group DNs at the last sign-in
}

func newLDAPState() *ldapState {
	return &ldapState{verified: make(map[[32]byte]time.Time), groups: make(map[string][]string)}
}

// IsDirectoryUser reports whether u signed in through LDAP.
func IsDirectoryUser(u store.User) bool { return u.Name != "" && u.Epoch == 0 }

// ldapConfig returns the LDAP settings now, or nil when LDAP is off.
func (s *Service) ldapConfig() (*store.LDAPConfig, error) {
	gen := s.store.AuthGeneration()
	l := s.ldap
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded && l.gen == gen {
		return l.config, nil
	}
	c, err := s.store.LDAPConfig()
	switch {
	case errors.Is(err, store.ErrLDAPNotConfigured):
		l.config = nil
	case err != nil:
		return nil, err
	default:
		l.config = &c
	}
	l.gen, l.loaded = gen, true
	clear(l.verified) // settings changed: check again
	return l.config, nil
}

// authenticateLDAP signs name in against the directory (see the order
// above). keys and now are Authenticate's throttle keys and time.
func (s *Service) authenticateLDAP(c *store.LDAPConfig, name, password string, keys attemptKeys, now time.Time, fresh bool) (store.User, error) {
	entry := sha256.Sum256([]byte(name + "\x00" + password))
	l := s.ldap
	l.mu.Lock()
	at, ok := l.verified[entry]
	l.mu.Unlock()
	if ok && !fresh && now.Sub(at) < ldapCheckTTL {
		return store.User{Name: name}, nil
	}
	if wait := s.throttle.begin(keys, now); wait > 0 {
		return store.User{}, &ThrottledError{RetryAfter: wait}
	}
	// A name outside the account grammar could never own a namespace or a
	// token subject; an organization's name belongs to the organization.
	if store.ValidateUserName(name) != nil || s.isOrg(name) {
		return store.User{}, ErrBadCredentials
	}
	u, err := LDAPSignIn(*c, name, password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		l.mu.Lock()
		delete(l.groups, name)
		l.mu.Unlock()
		return store.User{}, err
	case err != nil:
		s.throttle.cancel(keys, now)
		return store.User{}, err
	}
	s.throttle.succeeded(keys, now)
	l.mu.Lock()
	if len(l.verified) >= maxLDAPEntries {
		clear(l.verified)
	}
	if len(l.groups) >= maxLDAPEntries {
		clear(l.groups)
	}
	l.verified[entry] = now
	l.groups[name] = u.Groups
	l.mu.Unlock()
	return store.User{Name: name}, nil
}

// principal is u as the Authorizer sees it: a directory user's teams come
// from its groups at its last sign-in.
func (s *Service) principal(u store.User, authz *Authorizer) Principal {
	p := Principal{Name: u.Name, Admin: u.Admin}
	if IsDirectoryUser(u) {
		s.ldap.mu.Lock()
		groups := s.ldap.groups[u.Name]
		s.ldap.mu.Unlock()
		p.Teams = authz.TeamsOfGroups(groups)
	}
	return p
}

// isOrg reports whether name is an organization's.
func (s *Service) isOrg(name string) bool {
	authz, err := s.Authorizer()
	return err != nil || authz.model.orgs[name]
}
