package apiserver

import (
	"context"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// requestIDHeader carries a request's id in and out: a caller (or the
// ingress) may name its request, and every answer names the id its log
// lines carry, so a support ticket can quote it.
const requestIDHeader = "X-Request-Id"

// requestIDKey holds the request id in the Fiber locals.
const requestIDKey = "mpegflow.request_id"

// maxRequestIDLen bounds an incoming X-Request-Id; a UUID and the ids
// common ingress controllers generate fit.
const maxRequestIDLen = 64

type requestIDCtxKey struct{}

// requestID returns the request's id, assigning it on first use: the
// incoming X-Request-Id when it is sane (see saneRequestID), else a new
// UUID. The id is echoed in the response header and put into the user
// context, where the server's log handler (requestIDHandler) reads it, so
// every log line written with the request's context carries it. Calling it
// again returns the same id.
func requestID(c *fiber.Ctx) string {
	if rid, ok := c.Locals(requestIDKey).(string); ok {
		return rid
	}
	rid := c.Get(requestIDHeader)
	if !saneRequestID(rid) {
		rid = uuid.NewString()
	}
	c.Locals(requestIDKey, rid)
	c.Set(requestIDHeader, rid)
	c.SetUserContext(context.WithValue(c.UserContext(), requestIDCtxKey{}, rid))
	return rid
}

// saneRequestID accepts ids of 1..64 printable ASCII characters without
// spaces, so a caller cannot put control characters, quotes of another
// encoding or a megabyte into the logs and headers.
func saneRequestID(rid string) bool {
	if rid == "" || len(rid) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(rid); i++ {
		if rid[i] < 0x21 || rid[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestIDHandler adds the request id of the context, when there is one,
// as attribute request_id to every record, so that handlers need not pass
// it to each log call.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if rid, ok := ctx.Value(requestIDCtxKey{}).(string); ok {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", rid))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
