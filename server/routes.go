package server

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
)

// routes declares every route. Middleware order matters: requestPhases
// first, since everything after it, the body drain included, runs under the
// body's deadline; then recover, so a
// panic anywhere becomes a 500 through handleError, then the request id the
// access log and error log lines carry, then realClient, which settles who
// the client is (behind a trusted proxy) before anything logs or throttles
// by address, then the access log and metrics, then finishBody, which must
// see the request after its handler.
func (s *Server) routes() {
	s.app.Use(s.requestPhases)
	s.app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: s.logPanic}))
	s.app.Use(requestid.New())
	s.app.Use(s.realClient)
	s.app.Use(s.accessLog)
	s.app.Use(s.finishBody)

	// Health and metrics need no sign-in: probes and scrapers have none.
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", s.metrics.handler())
	if s.auth != nil {
		s.app.Get("/token", s.getToken)
		s.app.Post("/token", s.postToken)
	}
	if s.ui != nil {
		s.ui.Mount(s.app)
	}
	s.app.All("/v2", s.dispatch)
	s.app.All("/v2/*", s.dispatch)
}

// targetKey is the c.Locals key of the parsed /v2 target, which the access
// log and metrics read.
const targetKey = "berth.target"

// handler serves one method of one kind of /v2 target.
type handler func(s *Server, c *fiber.Ctx, t target) error

// handlers maps each /v2 target kind and method to its handler; HEAD is
// listed where GET is, as the spec requires.
var handlers = map[kind]map[string]handler{
	kindBase:    {fiber.MethodGet: (*Server).base, fiber.MethodHead: (*Server).base},
	kindCatalog: {fiber.MethodGet: (*Server).catalog},
	kindBlob: {
		fiber.MethodGet:    (*Server).getBlob,
		fiber.MethodHead:   (*Server).headBlob,
		fiber.MethodDelete: (*Server).deleteBlob,
	},
	kindUploadStart: {fiber.MethodPost: (*Server).startUpload},
	kindUpload: {
		fiber.MethodGet:    (*Server).uploadStatus,
		fiber.MethodPatch:  (*Server).patchUpload,
		fiber.MethodPut:    (*Server).putUpload,
		fiber.MethodDelete: (*Server).cancelUpload,
	},
	kindManifest: {
		fiber.MethodGet:    (*Server).getManifest,
		fiber.MethodHead:   (*Server).headManifest,
		fiber.MethodPut:    (*Server).putManifest,
		fiber.MethodDelete: (*Server).deleteManifest,
	},
	kindTags:      {fiber.MethodGet: (*Server).listTags},
	kindReferrers: {fiber.MethodGet: (*Server).listReferrers},
}

// dispatch parses the path after /v2/ and calls the handler for its kind
// and method.
func (s *Server) dispatch(c *fiber.Ctx) error {
	c.Set("Docker-Distribution-API-Version", "registry/2.0")
	tail := strings.TrimPrefix(c.Path(), "/v2")
	tail = strings.TrimPrefix(tail, "/")
	t, err := parseTarget(strings.Clone(tail))
	if err != nil {
		return err
	}
	c.Locals(targetKey, t)
	methods := handlers[t.Kind]
	h, ok := methods[c.Method()]
	if !ok {
		return newError(codeUnsupported, nil)
	}
	mirrored, open, err := s.mirrorRequest(c, &t)
	if err != nil {
		return err
	}
	if open {
		// A mirror opened to anonymous pulls (Docker sends a mirror no
		// credentials): nobody needs to sign in.
		c.Locals(callerKey, &caller{})
	} else if err := s.authorize(c, needFor(t, c.Method())); err != nil {
		return err
	}
	if mirrored {
		if handled, err := s.fillFromMirror(c, t); handled || err != nil {
			return err
		}
	}
	return h(s, c, t)
}

// base answers GET /v2/: the API version check every client starts with.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
func (s *Server) base(c *fiber.Ctx, _ target) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.SendString("{}")
}

// handleError is fiber's ErrorHandler: the single place where errors become
// responses. Unmapped errors are logged with the request id and shown to the
// client only as UNKNOWN.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code == fiber.StatusNotFound {
		err = errNotFound
	}
	e, unmapped := errorFor(err)
	if unmapped {
		s.log.Error("request failed", "id", c.Locals("requestid"), "method", c.Method(), "path", c.Path(), "err", err)
	}
	return writeError(c, e)
}

func (s *Server) logPanic(c *fiber.Ctx, e any) {
	s.log.Error("panic in handler", "id", c.Locals("requestid"), "method", c.Method(), "path", c.Path(), "panic", e)
}
