package ui

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// Web UI sessions of directory (LDAP) users. Such a user has no record in
// meta.db to check a session against, so its session record keeps what is
// checked instead: the user's groups (those mapped to a team: an AD user
// may be in hundreds, and records are read whole), when the directory was
// last asked, and which LDAP settings that was under. On every page:
//
//  1. Without asking the directory: LDAP still on with the same settings,
//     and no local user or organization has taken the name
//     (auth.Service.DirectorySession). Otherwise the session ends at once.
//  2. Once the last check is older than the settings' --ui-recheck
//     (2 minutes by default): the directory is asked again as the service
//     account, with no password (auth.Service.LookupDirectoryUser, what
//     `berth ldap test` does). A user it no longer finds — removed, or
//     disabled where the user filter leaves disabled accounts out — is
//     signed out; otherwise its groups are replaced, so team changes apply.
//  3. A directory that cannot be asked: the page is served on the groups of
//     the last successful check for at most one more interval (capped at
//     directoryGrace); past that the session ends, and signing in again
//     needs the directory. After a failed attempt the directory is not
//     asked again for directoryRetry, so pages do not each wait out the
//     LDAP timeout during an outage.
//
// The user's rights are the Authorizer's decisions for its name and the
// teams its groups map to — those of its docker token — and it is never
// an admin (the token path never makes a directory user one).

const (
	// directoryGrace caps how long past its interval a session goes on
	// while the directory cannot be asked.
	directoryGrace = 2 * time.Minute
	// directoryRetry is how long a failed check of a user is not repeated.
	directoryRetry = 10 * time.Second
	// maxDirectoryFailures bounds the memory of failed checks.
	maxDirectoryFailures = 4096
)

// errDirectoryRetryLater is a check skipped because the last one failed
// within directoryRetry.
var errDirectoryRetryLater = fmt.Errorf("%w: a check failed moments ago", auth.ErrLDAPUnavailable)

// directoryChecks runs the re-checks of directory users: one at a time per
// user (concurrent pages share it), and none within directoryRetry of a
// failure. It is safe for concurrent use.
type directoryChecks struct {
	flight singleflight.Group
	mu     sync.Mutex
	failed map[string]time.Time // user → last failed check
}

// lookup asks the directory for name's groups through a.
func (d *directoryChecks) lookup(a *auth.Service, name string, now time.Time) ([]string, error) {
	d.mu.Lock()
	at, ok := d.failed[name]
	d.mu.Unlock()
	if ok && now.Sub(at) < directoryRetry && !now.Before(at) {
		return nil, errDirectoryRetryLater
	}
	groups, err, _ := d.flight.Do(name, func() (any, error) {
		groups, err := a.LookupDirectoryUser(name)
		d.mu.Lock()
		defer d.mu.Unlock()
		if errors.Is(err, auth.ErrLDAPUnavailable) {
			if d.failed == nil || len(d.failed) >= maxDirectoryFailures {
				d.failed = make(map[string]time.Time)
			}
			d.failed[name] = now
		} else {
			delete(d.failed, name)
		}
		return groups, err
	})
	if err != nil {
		return nil, err
	}
	return groups.([]string), nil
}

// directoryViewer settles the viewer of directory session id at now, or
// ends the session (see above).
func (u *UI) directoryViewer(c *fiber.Ctx, id string, sess *session, now time.Time) (*viewer, error) {
	recheck, err := u.auth.DirectorySession(sess.user, sess.ldapConfig)
	if errors.Is(err, auth.ErrBadCredentials) {
		return u.endDirectorySession(c, id, sess, err)
	}
	if err != nil {
		return nil, err
	}
	if age := now.Sub(sess.checked); age >= recheck || age < 0 {
		groups, err := u.directory.lookup(u.auth, sess.user, now)
		switch {
		case errors.Is(err, auth.ErrBadCredentials):
			return u.endDirectorySession(c, id, sess, err)
		case errors.Is(err, auth.ErrLDAPUnavailable):
			if age < 0 || age >= recheck+min(recheck, directoryGrace) {
				return u.endDirectorySession(c, id, sess, err)
			}
			u.log.Warn("UI session of an LDAP user: the directory cannot be asked; going on with the groups of the last check",
				"user", sess.user, "checked", sess.checked, "err", err)
		case err != nil:
			return nil, err
		default:
			if groups, err = u.auth.MappedGroups(groups); err != nil {
				return nil, err
			}
			err := u.st.RecheckedUISession(id, groups, now)
			if errors.Is(err, store.ErrUISessionUnknown) {
				// Signed out or revoked meanwhile.
				u.clearCookie(c)
				return &viewer{}, nil
			}
			if err != nil {
				return nil, err
			}
			sess.groups, sess.checked = groups, now
		}
	}
	return &viewer{User: store.User{Name: sess.user}, SignedIn: true, Directory: true, groups: sess.groups,
		sessionID: id, session: sess}, nil
}

// endDirectorySession ends a directory session, saying why in the log.
func (u *UI) endDirectorySession(c *fiber.Ctx, id string, sess *session, why error) (*viewer, error) {
	u.log.Info("UI session of an LDAP user ended", "user", sess.user, "reason", why)
	return u.endSession(c, id)
}

// signinDirectory starts a session for directory user name, just verified
// by the directory under the LDAP settings configID.
func (u *UI) signinDirectory(name, configID string, now time.Time) (string, error) {
	groups, ok := u.auth.DirectoryGroups(name)
	if !ok {
		// Forgotten since (the memory of groups is bounded): ask again.
		var err error
		if groups, err = u.auth.LookupDirectoryUser(name); err != nil {
			return "", err
		}
	}
	groups, err := u.auth.MappedGroups(groups)
	if err != nil {
		return "", err
	}
	return u.sessions.createDirectory(name, groups, configID, now)
}
