package apiserver

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/gofiber/fiber/v2"
)

// recoverPanics is the outermost handler of the app: a panic in any later
// handler becomes a 500 problem (type internal) naming the request id, and
// an error log line with the panic value, the stack, the method and the
// path (and the request id, log wrapping requestIDHandler). The client never
// sees the panic value or the stack. Without it a panic would end the whole
// API process, and every other request in flight with it.
func recoverPanics(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		rid := requestID(c)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			log.ErrorContext(c.UserContext(), "handler panicked; the request failed with 500, fix the handler",
				slog.String("method", c.Method()), slog.String("path", c.Path()),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			// Drop whatever the handler had written before it panicked.
			c.Response().Reset()
			c.Set(requestIDHeader, rid)
			err = writeProblem(c, problem(fiber.StatusInternalServerError, "internal", "the server failed to handle the request; it has been logged"))
		}()
		return c.Next()
	}
}
