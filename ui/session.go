package ui

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// sessionCookie names the cookie that carries a session id.
const sessionCookie = "berth_session"

// maxSessions bounds the sessions kept in memory; past it the one closest
// to expiry goes, so a flood of sign-ins cannot exhaust memory.
const maxSessions = 10000

// session is one sign-in. It is bound to the user's epoch, which changes
// with every password change and every deletion and re-creation: a
// session whose epoch no longer matches is revoked on its next use.
type session struct {
	user    string
	epoch   uint64
	csrf    string
	expires time.Time
}

// sessions are kept server-side, in memory: a restart signs everybody out,
// which is the safe direction.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

// create starts a session for u and returns its id.
func (s *sessions) create(u store.User, now time.Time) (string, *session) {
	id, csrf := randomToken(), randomToken()
	sess := &session{user: u.Name, epoch: u.Epoch, csrf: csrf, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.evictLocked(now)
	}
	s.m[id] = sess
	return id, sess
}

// evictLocked drops expired sessions and, if none was, the one that
// expires first.
func (s *sessions) evictLocked(now time.Time) {
	var first string
	for id, sess := range s.m {
		if now.After(sess.expires) {
			delete(s.m, id)
			first = ""
			continue
		}
		if first == "" || sess.expires.Before(s.m[first].expires) {
			first = id
		}
	}
	if len(s.m) >= maxSessions && first != "" {
		delete(s.m, first)
	}
}

// get returns the live session id names, or nil.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[id]
	if sess != nil && now.After(sess.expires) {
		delete(s.m, id)
		return nil
	}
	return sess
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// viewer is who is looking: a signed-in user, or anonymous (zero user).
type viewer struct {
	User     store.User
	SignedIn bool
	// Everything is set under --auth none: anyone may do anything.
	Everything bool
	sessionID  string
	session    *session
}

// Admin reports whether the viewer may use the admin pages.
func (v *viewer) Admin() bool { return v.Everything || v.User.Admin }

// AuthOn reports whether there is a sign-in at all.
func (v *viewer) AuthOn() bool { return !v.Everything }

// viewerOf settles who makes the request from its session cookie. A
// session whose user is gone or has a new password is revoked here.
func (u *UI) viewerOf(c *fiber.Ctx) (*viewer, error) {
	if u.auth == nil {
		return &viewer{User: store.User{Admin: true}, Everything: true}, nil
	}
	id := c.Cookies(sessionCookie)
	if id == "" {
		return &viewer{}, nil
	}
	sess := u.sessions.get(id, time.Now())
	if sess == nil {
		u.clearCookie(c)
		return &viewer{}, nil
	}
	usr, err := u.st.User(sess.user)
	if errors.Is(err, store.ErrUserUnknown) || err == nil && usr.Epoch != sess.epoch {
		u.sessions.remove(id)
		u.clearCookie(c)
		return &viewer{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &viewer{User: usr, SignedIn: true, sessionID: id, session: sess}, nil
}

func (u *UI) setCookie(c *fiber.Ctx, id string) {
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: id, Path: Prefix, HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: u.opts.Secure, MaxAge: int(u.opts.SessionTTL.Seconds())})
}

func (u *UI) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: "", Path: Prefix, HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: u.opts.Secure, MaxAge: -1})
}

// signinForm shows the sign-in form.
func (u *UI) signinForm(c *fiber.Ctx, v *viewer) error {
	return u.render(c, v, "signin", "Sign in", map[string]string{"Error": ""})
}

// signin checks name and password with auth.Service.Authenticate — the
// same users, cache and brute-force throttle as /token — and starts a
// session.
func (u *UI) signin(c *fiber.Ctx, v *viewer) error {
	if u.auth == nil {
		return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
	}
	usr, err := u.auth.Authenticate(c.FormValue("name"), c.FormValue("password"), c.IP())
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		c.Status(fiber.StatusTooManyRequests)
		c.Set(fiber.HeaderRetryAfter, itoa(int(te.RetryAfter.Seconds()+0.999)))
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "Too many failed sign-ins: try again later."})
	case errors.Is(err, auth.ErrBadCredentials):
		c.Status(fiber.StatusUnauthorized)
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "Wrong name or password."})
	case err != nil:
		return err
	case auth.IsDirectoryUser(usr):
		// Sessions are checked against the local user's record on every
		// page (viewerOf); a directory user has none, so it would be
		// signed out at once. Say so instead.
		c.Status(fiber.StatusForbidden)
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "LDAP accounts cannot sign in to the web UI yet; they work with docker, podman and the API."})
	}
	if v.sessionID != "" {
		u.sessions.remove(v.sessionID)
	}
	id, _ := u.sessions.create(usr, time.Now())
	u.setCookie(c, id)
	return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
}

// signout ends the session.
func (u *UI) signout(c *fiber.Ctx, v *viewer) error {
	if v.sessionID != "" {
		u.sessions.remove(v.sessionID)
	}
	u.clearCookie(c)
	return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
}
