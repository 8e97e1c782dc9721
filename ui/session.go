package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// sessionCookie names the cookie that carries a session id.
const sessionCookie = "berth_session"

// session is one sign-in, kept in meta.db by its id's hash
// (store.UISession, so a restart keeps it). It is bound to the user's
// epoch, which changes with every password change and every deletion and
// re-creation: a session whose epoch no longer matches is revoked on its
// next use, and those store changes delete the user's sessions at once.
type session struct {
	user  string
	epoch uint64
	csrf  string
}

// sessions are the UI's view of the store's session records.
type sessions struct {
	st  *store.Store
	ttl time.Duration
}

func newSessions(st *store.Store, ttl time.Duration) *sessions {
	return &sessions{st: st, ttl: ttl}
}

// csrfOf derives a session's CSRF token from its id, so it needs no storing
// and the stored hash of the id does not reveal it.
func csrfOf(id string) string {
	sum := sha256.Sum256([]byte("berth ui csrf\x00" + id))
	return hex.EncodeToString(sum[:])
}

// create starts a session for u and returns its id.
func (s *sessions) create(u store.User, now time.Time) (string, *session, error) {
	id := randomToken()
	err := s.st.CreateUISession(id, store.UISession{User: u.Name, Epoch: u.Epoch, Expires: now.Add(s.ttl)}, now)
	if err != nil {
		return "", nil, err
	}
	return id, &session{user: u.Name, epoch: u.Epoch, csrf: csrfOf(id)}, nil
}

// get returns the live session id names, or nil.
func (s *sessions) get(id string, now time.Time) (*session, error) {
	rec, err := s.st.UISession(id, now)
	if errors.Is(err, store.ErrUISessionUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{user: rec.User, epoch: rec.Epoch, csrf: csrfOf(id)}, nil
}

func (s *sessions) remove(id string) error { return s.st.DeleteUISession(id) }

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
	sess, err := u.sessions.get(id, time.Now())
	if err != nil {
		return nil, err
	}
	if sess == nil {
		u.clearCookie(c)
		return &viewer{}, nil
	}
	usr, err := u.st.User(sess.user)
	if errors.Is(err, store.ErrUserUnknown) || err == nil && usr.Epoch != sess.epoch {
		if err := u.sessions.remove(id); err != nil {
			return nil, err
		}
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
		if err := u.sessions.remove(v.sessionID); err != nil {
			return err
		}
	}
	id, _, err := u.sessions.create(usr, time.Now())
	if err != nil {
		return err
	}
	u.setCookie(c, id)
	return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
}

// signout ends the session.
func (u *UI) signout(c *fiber.Ctx, v *viewer) error {
	if v.sessionID != "" {
		if err := u.sessions.remove(v.sessionID); err != nil {
			return err
		}
	}
	u.clearCookie(c)
	return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
}
