package ui

import (
	"io"

	"github.com/gofiber/fiber/v2"
)

// maxFormSize bounds the body of a UI form: a few short fields. The server
// streams request bodies (uploads can be gigabytes), and fasthttp's own form
// parsing would read a streamed body whole, whatever its size; so a POST's
// body is read here through this cap first, and FormValue then parses only
// what was read.
const maxFormSize = 64 << 10

var errFormTooLarge = errStatus(fiber.StatusRequestEntityTooLarge, "This form is larger than any form of this site.")

// boundForm reads a POST's body through maxFormSize and puts it back as the
// request's body, so that c.FormValue never reads past the cap. Content-
// Length 0 or none (-2) means no body: reading the stream then would wait
// on the connection for the next request.
func boundForm(c *fiber.Ctx) error {
	n := c.Request().Header.ContentLength()
	switch {
	case n == 0 || n == -2:
		return nil
	case n > maxFormSize:
		c.Context().SetConnectionClose()
		return errFormTooLarge
	}
	stream := c.Context().RequestBodyStream()
	if stream == nil { // fasthttp read the body with the headers
		if len(c.Body()) > maxFormSize {
			return errFormTooLarge
		}
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(stream, maxFormSize+1))
	if err != nil {
		c.Context().SetConnectionClose()
		return errStatus(fiber.StatusBadRequest, "The form did not arrive whole.")
	}
	if len(body) > maxFormSize { // chunked, with no length to refuse it by
		c.Context().SetConnectionClose()
		return errFormTooLarge
	}
	c.Request().SetBodyRaw(body)
	return nil
}
