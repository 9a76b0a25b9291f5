package apiserver

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Problem is an RFC 9457 problem detail. Type is a stable URN clients can
// switch on; Errors names every offending field of a validation failure.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RequestID is the id of the failed request, also in the X-Request-Id
	// response header and in every log line of the request: quote it when
	// reporting a problem.
	RequestID string                  `json:"request_id,omitempty"`
	Errors    []validation.FieldError `json:"errors,omitempty"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

const problemPrefix = "urn:mpegflow:problem:"

func problem(status int, slug, detail string) *Problem {
	return &Problem{Type: problemPrefix + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

func badRequest(detail string) *Problem {
	return problem(fiber.StatusBadRequest, "bad-request", detail)
}
func notFound(what string) *Problem {
	return problem(fiber.StatusNotFound, "not-found", what+" not found")
}
func invalid(errs validation.Errors) *Problem {
	p := problem(fiber.StatusUnprocessableEntity, "validation", "the request has invalid fields; see errors")
	p.Errors = errs
	return p
}

func invalidField(field, format string, args ...any) *Problem {
	var errs validation.Errors
	errs.Add(field, format, args...)
	return invalid(errs)
}

// errorHandler turns every error a handler returns into problem+json. Domain
// errors map to their status; anything unknown is a 500 whose detail never
// reveals internals (the log has them).
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	return writeProblem(c, s.toProblem(c, err))
}

// writeProblem answers p as problem+json, naming the request's path and id.
func writeProblem(c *fiber.Ctx, p *Problem) error {
	p.Instance = c.Path()
	p.RequestID = requestID(c)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).JSON(p, "application/problem+json")
}

func (s *Server) toProblem(c *fiber.Ctx, err error) *Problem {
	var p *Problem
	var fe *fiber.Error
	var ce *store.ConflictError
	if ve, ok := validation.As(err); ok {
		return invalid(ve)
	}
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ce):
		return problem(fiber.StatusConflict, "conflict", ce.Detail)
	case errors.Is(err, store.ErrNotFound):
		return notFound("resource")
	case errors.Is(err, store.ErrBadCursor):
		return invalidField("cursor", "not a cursor this server issued")
	case errors.As(err, &fe):
		slug := map[int]string{
			fiber.StatusNotFound:              "not-found",
			fiber.StatusMethodNotAllowed:      "method-not-allowed",
			fiber.StatusRequestEntityTooLarge: "too-large",
			fiber.StatusRequestTimeout:        "timeout",
		}[fe.Code]
		if slug == "" {
			slug = "http"
		}
		return problem(fe.Code, slug, fe.Message)
	}
	if errors.Is(err, objstore.ErrNoCredentials) {
		s.log.ErrorContext(c.UserContext(), "object storage credentials are unavailable; check the server's S3 keys or its pod identity (role, ServiceAccount annotation, credential agent)",
			slog.String("method", c.Method()), slog.String("path", c.Path()), slog.Any("error", err))
		c.Set(fiber.HeaderRetryAfter, "30")
		return problem(fiber.StatusServiceUnavailable, "storage-unavailable", "object storage is unavailable; retry later")
	}
	if detail, ok := store.RefusedInput(err); ok {
		s.log.WarnContext(c.UserContext(), "postgres refused a value the api let through; add a check where this route validates its input",
			slog.String("method", c.Method()), slog.String("route", c.Route().Path), slog.Any("error", err))
		return problem(fiber.StatusUnprocessableEntity, "unstorable-input", detail)
	}
	s.log.ErrorContext(c.UserContext(), "request failed", slog.String("method", c.Method()),
		slog.String("path", c.Path()), slog.Any("error", err))
	return problem(fiber.StatusInternalServerError, "internal", "the server failed to handle the request; it has been logged")
}

// notFoundOr names the missing resource in a 404 and passes other errors on.
func notFoundOr(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(what)
	}
	return err
}
