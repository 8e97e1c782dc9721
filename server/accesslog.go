package server

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
)

// accessLog writes one line per request after it is served. It logs the
// path but never headers, so credentials and tokens stay out of the log.
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		// Let the error handler write the response now, so the status
		// logged is the one the client gets.
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("write error response", "err", herr)
		}
	}
	level := slog.LevelInfo
	if c.Response().StatusCode() >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.Context(), level, "request",
		"id", c.Locals("requestid"),
		"method", c.Method(),
		"path", c.Path(),
		"status", c.Response().StatusCode(),
		"bytes_in", c.Request().Header.ContentLength(),
		"bytes_out", c.Response().Header.ContentLength(),
		"duration", time.Since(start),
		"remote", c.IP(),
	)
	return nil
}
