package server

import "github.com/gofiber/fiber/v2"

// healthz is the liveness check: the process answers HTTP. It touches
// nothing else, so a busy or full disk never gets a live server restarted.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.SendString("ok\n")
}

// readyz is the readiness check: 200 while the store is open and takes
// writes (store.CheckWritable: one empty bbolt commit and one small synced
// file, cheap enough for a probe every few seconds), 503 once shutdown has
// begun or when the data directory cannot be written. The reason goes to
// the log, not to the unauthenticated caller.
func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return c.Status(fiber.StatusServiceUnavailable).SendString("shutting down\n")
	}
	if err := s.store.CheckWritable(); err != nil {
		s.log.Error("readiness check failed", "err", err)
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: the data directory cannot be written\n")
	}
	return c.SendString("ready\n")
}
