// Package ui is berth's web UI: server-rendered html/template pages to
// browse, inspect and delete what the registry holds and, for admins, to
// run the admin operations. It is mounted by `serve` on the API's port
// (same origin as /v2/, so no CORS) under /ui/. Every asset is embedded;
// the pages need no script at all.
//
// Who sees what follows the API's rules exactly: a page lists only what the
// viewer may pull (auth.Service.PullFilter, as _catalog), a delete needs
// the delete right (auth.Service.Authorize, as a manifest DELETE), and the
// admin pages need an admin. Sign-in checks the same users through the same
// throttle as /token (auth.Service.Authenticate).
package ui

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Prefix is where the UI is mounted.
const Prefix = "/ui"

// pageSize bounds every list a page shows; the rest is behind "next".
const pageSize = 50

// Options configure the UI.
type Options struct {
	Store *store.Store
	// Auth checks sign-ins and rights; nil under --auth none, where every
	// visitor may do everything, as on the API.
	Auth *auth.Service
	// Admin is what the admin pages run operations against.
	Admin *admin.Env
	// Secure marks the session cookie Secure (serve runs TLS).
	Secure bool
	// SessionTTL is how long a sign-in lasts; zero means 12 hours.
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Version is shown on the admin page; Started is when serve started.
	Version string
	Started time.Time
	// Context ends with the server: a backup the backups page started
	// stops then (its temporary file goes). When it is set (serve), the
	// kept repository summaries are computed at once, in the background.
	// Nil means never ending, and summaries computed on first use.
	Context context.Context
	// CertExpiry, when not nil, returns when the served TLS certificate
	// expires (it may be reloaded on SIGHUP, so it is asked each time).
	CertExpiry func() time.Time
}

// UI serves the web pages. Create it with New; it is safe for concurrent
// use.
type UI struct {
	opts     Options
	st       *store.Store
	auth     *auth.Service
	log      *slog.Logger
	sessions *sessions
	// directory re-checks directory users' sessions (directory.go).
	directory directoryChecks
	// summaries are kept for the lists sorted by size or push and the
	// storage page.
	summaries *summaries
	backup    backupJob
}

// New returns the UI. The embedded templates are parsed when the first
// page is rendered (pages); TestPages_Parse finds a template that does not.
func New(opts Options) (*UI, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	serving := opts.Context != nil
	if !serving {
		opts.Context = context.Background()
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	u := &UI{opts: opts, st: opts.Store, auth: opts.Auth, log: opts.Logger,
		sessions: newSessions(opts.Store, opts.SessionTTL)}
	u.summaries = &summaries{st: opts.Store, log: opts.Logger.Warn, minAge: summaryMinAge, syncBelow: summarySyncBelow}
	if serving {
		// Take the first snapshot now, so that no request waits for it
		// (0.2 s at 10,000 repositories); one that comes sooner waits for
		// this one instead of computing its own.
		go func() {
			if _, err := u.summaries.get(); err != nil && opts.Context.Err() == nil {
				opts.Logger.Warn("repository summaries", "err", err)
			}
		}()
	}
	return u, nil
}

// Mount adds the UI's routes: / redirects to /ui/. Every UI response
// carries the security headers (headers.go); POSTs pass the CSRF check
// first (csrf.go).
func (u *UI) Mount(r fiber.Router) {
	r.Get("/", func(c *fiber.Ctx) error { return c.Redirect(Prefix+"/", fiber.StatusFound) })
	g := r.Group(Prefix, securityHeaders)
	static, _ := fs.Sub(staticFiles, "static")
	g.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static), MaxAge: 3600}))
	g.Get("/", u.page(u.repositories))
	g.Get("/repo", u.page(u.repository))
	g.Get("/image", u.page(u.image))
	g.Get("/signin", u.page(u.signinForm))
	g.Post("/signin", u.page(u.signin))
	g.Post("/signout", u.page(u.signout))
	g.Get("/delete", u.page(u.deleteConfirm))
	g.Post("/delete", u.page(u.delete))
	g.Get("/admin", u.page(u.adminOnly(u.adminHome)))
	g.Post("/admin/user/add", u.page(u.adminOnly(u.userAdd)))
	g.Post("/admin/user/passwd", u.page(u.adminOnly(u.userPasswd)))
	g.Post("/admin/user/del", u.page(u.adminOnly(u.userDel)))
	g.Post("/admin/user/admin", u.page(u.adminOnly(u.userAdmin)))
	g.Get("/admin/gc", u.page(u.adminOnly(u.gcHome)))
	g.Post("/admin/gc", u.page(u.adminOnly(u.gc)))
	g.Get("/admin/storage", u.page(u.adminOnly(u.storage)))
	g.Get("/admin/backups", u.page(u.adminOnly(u.backups)))
	g.Post("/admin/backups", u.page(u.adminOnly(u.backupStart)))
	g.Get("/admin/rules", u.page(u.adminOnly(u.rules)))
	g.Get("/admin/rules/test", u.page(u.adminOnly(u.ruleTester)))
	g.Post("/admin/rules/add", u.page(u.adminOnly(u.ruleAdd)))
	g.Post("/admin/rules/del", u.page(u.adminOnly(u.ruleDel)))
	g.Post("/admin/rules/move", u.page(u.adminOnly(u.ruleMove)))
	g.All("/*", u.page(func(*fiber.Ctx, *viewer) error { return errStatus(fiber.StatusNotFound, "no such page") }))
}

// handlerFunc is a page handler: it gets the request's viewer, already
// authenticated and, for a POST, past the CSRF check.
type handlerFunc func(c *fiber.Ctx, v *viewer) error

// page wraps h: it settles the viewer, bounds a POST's form and checks its
// CSRF token, and turns an error into an error page (never the API's JSON
// body).
func (u *UI) page(h handlerFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v, err := u.viewerOf(c)
		if err == nil && c.Method() == fiber.MethodPost {
			if err = boundForm(c); err == nil {
				err = u.checkCSRF(c, v)
			}
		}
		if err == nil {
			err = h(c, v)
		}
		if err == nil {
			return nil
		}
		var pe *pageError
		if !errors.As(err, &pe) {
			u.log.Error("ui request failed", "id", c.Locals("requestid"), "path", c.Path(), "err", err)
			pe = &pageError{Status: fiber.StatusInternalServerError, Message: "internal error"}
		}
		c.Status(pe.Status)
		return u.render(c, v, "error", pe.Message, pe)
	}
}

// pageError is an error shown to the visitor with its status; its
// message must hold nothing internal.
type pageError struct {
	Status  int
	Message string
}

func (e *pageError) Error() string { return e.Message }

func errStatus(status int, msg string) error { return &pageError{Status: status, Message: msg} }

// pageData is what every template gets: the viewer, the page title, the
// CSRF token for its forms, and the page's own data.
type pageData struct {
	Title  string
	Viewer *viewer
	CSRF   string
	Data   any
}

// render writes page name with data as HTML.
func (u *UI) render(c *fiber.Ctx, v *viewer, name, title string, data any) error {
	all, err := pages()
	if err != nil {
		return err
	}
	t, ok := all[name]
	if !ok {
		return errors.New("no template " + name)
	}
	if v == nil {
		v = &viewer{}
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return t.Execute(c.Response().BodyWriter(), pageData{Title: title, Viewer: v, CSRF: u.csrfToken(c, v), Data: data})
}
