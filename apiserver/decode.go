package apiserver

import (
	"bytes"
	"errors"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/strictjson"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// decodeJSON reads the request body strictly into v: the content type must
// be JSON, and internal/strictjson refuses malformed JSON (400) and, naming
// each field (422), text that is no text (NUL, invalid UTF-8, lone
// surrogates), keys given twice, unknown fields and values of the wrong
// type, so nothing encoding/json would silently drop or replace reaches a
// handler.
func decodeJSON(c *fiber.Ctx, v any) error {
	if ct := c.Get(fiber.HeaderContentType); ct != fiber.MIMEApplicationJSON { // the usual one, without parsing (and the map of parameters it makes)
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem(fiber.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
		}
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body is empty; send a JSON object")
	}
	if err := strictjson.Decode(body, v); err != nil {
		return jsonProblem(err)
	}
	return nil
}

// jsonProblem turns a strictjson error into a problem: malformed JSON and a
// body of the wrong type are 400, field errors 422. Anything else is a
// request type strictjson cannot check, a bug that answers 500.
func jsonProblem(err error) error {
	var syn *strictjson.SyntaxError
	if errors.As(err, &syn) {
		return badRequest(syn.Error())
	}
	errs, ok := validation.As(err)
	if !ok {
		return err
	}
	for _, fe := range errs {
		if fe.Field == "" { // the body itself: not an object
			return badRequest("the body is not what this route takes: " + fe.Detail)
		}
	}
	return invalid(errs)
}

// checkParams refuses path and query parameters that are no text, with 422
// naming the parameter, before a handler can pass them to Postgres (which
// stores neither NUL nor invalid UTF-8). Fiber hands path parameters over as
// the client wrote them, so raw bytes arrive there; query values arrive
// unescaped, so %00 and %FF do too.
func checkParams(c *fiber.Ctx) error {
	var errs validation.Errors
	for _, name := range c.Route().Params {
		if p := validation.TextProblem(c.Params(name)); p != "" {
			errs.Add(name, "%s", p)
		}
	}
	for k, v := range c.Context().QueryArgs().All() {
		name := strings.ToValidUTF8(strings.ReplaceAll(string(k), "\x00", "\uFFFD"), "\uFFFD")
		if p := validation.TextProblem(string(k)); p != "" {
			errs.Add(name, "the parameter's name %s", p)
		} else if p := validation.TextProblem(string(v)); p != "" {
			errs.Add(name, "%s", p)
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	return c.Next()
}

// pathID parses an id path parameter; a malformed id is simply not found.
func pathID(c *fiber.Ctx, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return uuid.Nil, notFound(what)
	}
	return id, nil
}

// pageParams reads limit and cursor query parameters.
func pageParams(c *fiber.Ctx) (store.Page, error) {
	limit := 0
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			return store.Page{}, invalidField("limit", "must be an integer from 1 to 200")
		}
		limit = n
	}
	p, err := store.ParsePage(limit, c.Query("cursor"))
	if err != nil {
		return store.Page{}, invalidField("cursor", "not a cursor this server issued")
	}
	return p, nil
}

// timeParam parses an RFC 3339 timestamp query parameter, if present.
func timeParam(c *fiber.Ctx, name string) (*time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, invalidField(name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return &t, nil
}

// listOf is a collection that is never paged, mapped to the wire.
func listOf[R, W any](items []R, out func(R) W) apiv1.Page[W] {
	return apiv1.Page[W]{Items: mapAll(items, out)}
}

// pageOf maps one page of rows to the wire with the cursor of the next
// page when this one is full.
func pageOf[R, W any](items []R, page store.Page, key func(R) (time.Time, uuid.UUID), wire func(R) W) apiv1.Page[W] {
	out := apiv1.Page[W]{Items: mapAll(items, wire)}
	limit := page.Limit
	if limit <= 0 {
		limit = 50
	}
	if len(items) == limit {
		t, id := key(items[len(items)-1])
		out.NextCursor = store.NextCursor(t, id)
	}
	return out
}

// intParam reads an integer query parameter within [lo, hi].
func intParam(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalidField(name, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

func itoa(i int) string { return strconv.Itoa(i) }
