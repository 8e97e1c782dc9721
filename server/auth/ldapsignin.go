package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	configID string            // DirectorySettings' identifier of config
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
	l.configID = ""
	if l.config != nil {
		// Every field counts, the bind password too: any change of the
		// settings is a reconfiguration (DirectorySettings).
		b, err := json.Marshal(l.config)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		l.configID = hex.EncodeToString(sum[:16])
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

// The web UI's directory sessions (ui/session.go) use what follows: a
// session remembers the settings it was verified under and the user's
// groups, and asks the directory again every UIRecheck without a password.

// DefaultUIRecheck is UIRecheck when the settings give none.
const DefaultUIRecheck = 2 * time.Minute

// maxUIRecheckSeconds bounds --ui-recheck: a day.
const maxUIRecheckSeconds = 24 * 60 * 60

// UIRecheck is how often a web UI session of a directory user under c asks
// the directory again.
func UIRecheck(c store.LDAPConfig) time.Duration {
	if c.UIRecheckSeconds <= 0 {
		return DefaultUIRecheck
	}
	return time.Duration(c.UIRecheckSeconds) * time.Second
}

// DirectorySettings returns an identifier of the LDAP settings now, which
// changes with any change of them, and their UIRecheck; id is "" when LDAP
// is off. It reads meta.db only when the store's AuthGeneration moved.
func (s *Service) DirectorySettings() (id string, recheck time.Duration, err error) {
	c, err := s.ldapConfig()
	if err != nil || c == nil {
		return "", 0, err
	}
	s.ldap.mu.Lock()
	defer s.ldap.mu.Unlock()
	return s.ldap.configID, UIRecheck(*c), nil
}

// DirectoryGroups returns the groups directory user name was in at its
// last sign-in through this Service, and whether they are known.
func (s *Service) DirectoryGroups(name string) ([]string, bool) {
	s.ldap.mu.Lock()
	defer s.ldap.mu.Unlock()
	g, ok := s.ldap.groups[name]
	return g, ok
}

// LookupDirectoryUser asks the directory, as the service account, whether
// name is still a directory user, and returns its groups now. It returns
// ErrBadCredentials when it is not: LDAP is off, the user filter finds no
// entry (removed, or disabled where the filter leaves disabled accounts
// out), a local user or an organization has the name; an error wrapping
// ErrLDAPUnavailable when the directory cannot be asked. A found user's
// groups also replace those kept from its last sign-in.
func (s *Service) LookupDirectoryUser(name string) ([]string, error) {
	c, err := s.ldapConfig()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w: LDAP sign-in is off", ErrBadCredentials)
	}
	if err := s.directoryName(name); err != nil {
		return nil, err
	}
	u, err := LDAPLookup(*c, name)
	l := s.ldap
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case errors.Is(err, ErrBadCredentials):
		delete(l.groups, name)
		return nil, fmt.Errorf("%w: the user filter finds no single entry for %s", err, name)
	case err != nil:
		return nil, err
	}
	if _, ok := l.groups[name]; ok {
		l.groups[name] = u.Groups
	}
	return u.Groups, nil
}

// DirectorySession checks, without asking the directory, that a web UI
// session of directory user name verified under the settings configID (see
// DirectorySettings) may go on: LDAP is on with the same settings and no
// local user or organization has taken the name. It returns the settings'
// UIRecheck; an error wrapping ErrBadCredentials, saying why, when the
// session must end; other errors from the store.
func (s *Service) DirectorySession(name, configID string) (time.Duration, error) {
	id, recheck, err := s.DirectorySettings()
	switch {
	case err != nil:
		return 0, err
	case id == "":
		return 0, fmt.Errorf("%w: LDAP sign-in is off", ErrBadCredentials)
	case id != configID:
		return 0, fmt.Errorf("%w: the LDAP settings changed", ErrBadCredentials)
	}
	return recheck, s.directoryName(name)
}

// directoryName returns an error wrapping ErrBadCredentials when name
// cannot be a directory user's (now): not an account name, an
// organization's, or a local user's.
func (s *Service) directoryName(name string) error {
	if store.ValidateUserName(name) != nil {
		return fmt.Errorf("%w: %q is no account name", ErrBadCredentials, name)
	}
	if s.isOrg(name) {
		return fmt.Errorf("%w: %s is an organization", ErrBadCredentials, name)
	}
	_, err := s.users.user(s.store, name)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s is a local user", ErrBadCredentials, name)
	case errors.Is(err, store.ErrUserUnknown):
		return nil
	}
	return err
}

// MappedGroups returns those of groups that `team ldap-group` maps to a
// team now: all a web UI session needs to keep of a user's groups (an AD
// user may be in hundreds). A mapping added later counts from the
// session's next check.
func (s *Service) MappedGroups(groups []string) ([]string, error) {
	authz, err := s.Authorizer()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range groups {
		if len(authz.TeamsOfGroups([]string{g})) > 0 {
			out = append(out, g)
		}
	}
	return out, nil
}

// AuthorizeDirectory is Authorize for directory user name as a member of
// the teams groups map to (a web UI session's groups as of its last check,
// rather than those of the user's last sign-in).
func (s *Service) AuthorizeDirectory(name string, groups []string, scopes []Scope) ([]Access, error) {
	authz, err := s.Authorizer()
	if err != nil {
		return nil, err
	}
	return authorizeAs(authz, Principal{Name: name, Teams: authz.TeamsOfGroups(groups)}, scopes), nil
}

// PullFilterDirectory is PullFilter for directory user name as a member of
// the teams groups map to.
func (s *Service) PullFilterDirectory(name string, groups []string) (func(repo string) bool, error) {
	authz, err := s.Authorizer()
	if err != nil {
		return nil, err
	}
	return pullFilterOf(authz, Principal{Name: name, Teams: authz.TeamsOfGroups(groups)}), nil
}
