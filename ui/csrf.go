package ui

import (
	"crypto/subtle"
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// csrfCookie carries the double-submit token of visitors without a
// session (the sign-in form; every form under --auth none).
const csrfCookie = "berth_csrf"

// csrfToken returns the token the page's forms carry: the session's, or
// for a visitor without one the value of the double-submit cookie, set
// here when missing.
func (u *UI) csrfToken(c *fiber.Ctx, v *viewer) string {
	if v.session != nil {
		return v.session.csrf
	}
	if t := c.Cookies(csrfCookie); len(t) == 64 {
		return t
	}
	t := randomToken()
	c.Cookie(&fiber.Cookie{Name: csrfCookie, Value: t, Path: Prefix, HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: u.opts.Secure})
	return t
}

// checkCSRF refuses a POST that is not from one of our own pages: one whose
// Origin (browsers send it on every POST) is another origin, or whose
// form lacks the token. Only the UI's cookie sessions are checked; the API
// (Basic or Bearer, no cookies) never passes through here.
func (u *UI) checkCSRF(c *fiber.Ctx, v *viewer) error {
	forbidden := errStatus(fiber.StatusForbidden, "This form did not come from this site (CSRF check failed). Reload the page and try again.")
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		ou, err := url.Parse(o)
		if err != nil || ou.Host != c.Hostname() {
			return forbidden
		}
	}
	if c.Get("Sec-Fetch-Site") == "cross-site" {
		return forbidden
	}
	want := c.Cookies(csrfCookie)
	if v.session != nil {
		want = v.session.csrf
	}
	got := c.FormValue("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return forbidden
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
