package server

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// accessLog writes one line per request after it is served and records
// the request in the metrics. A line holds the method, route kind,
// repository, path (never the query), status, body bytes, duration, user
// and client address, and never a header or a form value other than a user
// name: passwords and tokens stay out of the log. Health checks and scrapes
// log at debug level, so probes every few seconds do not bury the requests
// that matter.
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	err := c.Next()
	if err != nil {
		// Let the error handler write the response now, so the status
		// logged is the one the client gets.
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("write error response", "err", herr)
		}
	}
	took := time.Since(start)
	route := routeOf(c)
	status := c.Response().StatusCode()
	in, out := requestBytes(c), responseBytes(c)
	s.metrics.observe(c, route, status, in, out, took)

	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case route == "healthz" || route == "readyz" || route == "metrics":
		level = slog.LevelDebug
	}
	if !s.log.Enabled(c.Context(), level) {
		return nil
	}
	t, _ := c.Locals(targetKey).(target)
	attrs := [...]slog.Attr{
		slog.Any("id", c.Locals("requestid")),
		slog.String("method", c.Method()),
		slog.String("route", route),
		slog.String("repo", t.Repo),
		slog.String("path", c.Path()),
		slog.Int("status", status),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Duration("duration", took),
		slog.String("user", userOf(c)),
		slog.String("remote", c.IP()),
		slog.String("cache", cacheOf(c)),
		{},
	}
	n := len(attrs) - 1
	// A refusal names the grant or rule behind it (authz.go noteDenial).
	if denied, ok := c.Locals(deniedKey).(string); ok {
		attrs[n] = slog.String("denied", denied)
		n++
	}
	// What slog.Logger.LogAttrs does, less the runtime.Callers it makes
	// for a source location that no handler of ours prints (AddSource is
	// never set): a measurable part of a manifest HEAD.
	r := slog.NewRecord(time.Now(), level, "request", 0)
	r.AddAttrs(attrs[:n]...)
	_ = s.log.Handler().Handle(c.Context(), r)
	return nil
}

// userOf is the account a request acted as: the authenticated caller, else
// the user name sent with Basic auth or in a /token password grant, right
// or wrong (a failed sign-in is worth a name in the log). "" is anonymous.
// Only the name is taken; the password beside it is dropped unread.
func userOf(c *fiber.Ctx) string {
	if who, ok := c.Locals(callerKey).(*caller); ok {
		return who.account
	}
	if scheme, cred, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " "); strings.EqualFold(scheme, "Basic") {
		name, _, _ := parseBasic(cred)
		return name
	}
	// A /token password grant: postToken noted the name it read.
	name, _ := c.Locals(formUserKey).(string)
	return name
}

// requestBytes is how much of the request body arrived: what the handler
// and finishBody read of the stream, or the body's length when fasthttp
// read it whole for a form (/token). A stream nobody read counts nothing:
// reading it here could pull a whole refused upload into memory.
func requestBytes(c *fiber.Ctx) int64 {
	if b, ok := c.Locals(bodyKey).(*bodyReader); ok && b.n > 0 {
		return b.n
	}
	if c.Request().IsBodyStream() {
		return 0
	}
	return int64(len(c.Request().Body()))
}

// responseBytes is the size of the response body: the declared length of a
// streamed one (a blob), the buffer's length otherwise, nothing for HEAD.
// It is what the response promises; a client that hangs up early gets less.
func responseBytes(c *fiber.Ctx) int64 {
	resp := c.Response()
	switch {
	case resp.SkipBody || c.Method() == fiber.MethodHead:
		return 0
	case resp.IsBodyStream():
		return int64(max(resp.Header.ContentLength(), 0))
	}
	return int64(len(resp.Body()))
}

// cacheOf is how a mirror served the request: hit, miss, stale, or "" for
// a request no mirror took part in.
func cacheOf(c *fiber.Ctx) string {
	v, _ := c.Locals(cacheKey).(string)
	return v
}
