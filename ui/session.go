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
// (store.UISession, so a restart keeps it). A local user's is bound to the
// user's epoch, which changes with every password change and every
// deletion and re-creation: a session whose epoch no longer matches is
// revoked on its next use, and those store changes delete the user's
// sessions at once. A directory (LDAP) user's is checked as directory.go
// says.
type session struct {
	user  string
	epoch uint64
	csrf  string
	// directory marks an LDAP user's session: its groups as of the last
	// check of the directory (checked), under the LDAP settings
	// ldapConfig (auth.Service.DirectorySettings).
	directory  bool
	groups     []string
	checked    time.Time
	ldapConfig string
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

// create starts a session for local user u and returns its id.
func (s *sessions) create(u store.User, now time.Time) (string, error) {
	return s.put(store.UISession{User: u.Name, Epoch: u.Epoch, Expires: now.Add(s.ttl)}, now)
}

// createDirectory starts a session for directory user name, in groups as
// the directory said at now, under the LDAP settings configID.
func (s *sessions) createDirectory(name string, groups []string, configID string, now time.Time) (string, error) {
	return s.put(store.UISession{User: name, Expires: now.Add(s.ttl), Directory: true,
		Groups: groups, Checked: now, LDAPConfig: configID}, now)
}

func (s *sessions) put(rec store.UISession, now time.Time) (string, error) {
	id := randomToken()
	if err := s.st.CreateUISession(id, rec, now); err != nil {
		return "", err
	}
	return id, nil
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
	return &session{user: rec.User, epoch: rec.Epoch, csrf: csrfOf(id), directory: rec.Directory,
		groups: rec.Groups, checked: rec.Checked, ldapConfig: rec.LDAPConfig}, nil
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
	// Directory marks an LDAP user; groups are its groups as of its
	// session's last check, which decide its teams.
	Directory bool
	groups    []string
	sessionID string
	session   *session
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
	if sess.directory {
		return u.directoryViewer(c, id, sess, time.Now())
	}
	usr, err := u.st.User(sess.user)
	if errors.Is(err, store.ErrUserUnknown) || err == nil && usr.Epoch != sess.epoch {
		return u.endSession(c, id)
	}
	if err != nil {
		return nil, err
	}
	return &viewer{User: usr, SignedIn: true, sessionID: id, session: sess}, nil
}

// endSession revokes session id and clears its cookie: the request goes
// on as anonymous.
func (u *UI) endSession(c *fiber.Ctx, id string) (*viewer, error) {
	if err := u.sessions.remove(id); err != nil {
		return nil, err
	}
	u.clearCookie(c)
	return &viewer{}, nil
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

// signin checks name and password with auth.Service — the same users,
// cache and brute-force throttle as /token, and like /token it always asks
// the directory for a name that is no local user — and starts a session.
func (u *UI) signin(c *fiber.Ctx, v *viewer) error {
	if u.auth == nil {
		return c.Redirect(Prefix+"/", fiber.StatusSeeOther)
	}
	// The LDAP settings are read before the directory is asked: should
	// they change in between, the session records the old ones and ends
	// at its first page.
	configID, _, err := u.auth.DirectorySettings()
	if err != nil {
		return err
	}
	usr, err := u.auth.AuthenticateForToken(c.FormValue("name"), c.FormValue("password"), c.IP())
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		c.Status(fiber.StatusTooManyRequests)
		c.Set(fiber.HeaderRetryAfter, itoa(int(te.RetryAfter.Seconds()+0.999)))
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "Too many failed sign-ins: try again later."})
	case errors.Is(err, auth.ErrBadCredentials):
		c.Status(fiber.StatusUnauthorized)
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "Wrong name or password."})
	case errors.Is(err, auth.ErrLDAPUnavailable):
		u.log.Warn("UI sign-in: LDAP directory unavailable", "err", err)
		c.Status(fiber.StatusServiceUnavailable)
		return u.render(c, v, "signin", "Sign in", map[string]string{"Error": "The LDAP directory cannot be reached; try again later."})
	case err != nil:
		return err
	}
	if v.sessionID != "" {
		if err := u.sessions.remove(v.sessionID); err != nil {
			return err
		}
	}
	var id string
	if auth.IsDirectoryUser(usr) {
		id, err = u.signinDirectory(usr.Name, configID, time.Now())
	} else {
		id, err = u.sessions.create(usr, time.Now())
	}
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
