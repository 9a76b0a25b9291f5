package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/store"
)

// decodeJSON reads the request body strictly into v: the content type must
// be JSON, unknown fields and trailing data are refused, and type mismatches
// name the field.
func decodeJSON(c *fiber.Ctx, v any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return problem(fiber.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body has data after its JSON value")
	}
	return nil
}

func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("malformed JSON at byte " + strconv.FormatInt(syn.Offset, 10) + ": " + syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the body ends early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("the body must be a JSON " + typ.Type.Kind().String())
		}
		return invalidField(field, "must be %s, not %s", jsonKind(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalidField(name, "unknown field")
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return badRequest("malformed JSON: " + err.Error())
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string", goType == "uuid.UUID", goType == "time.Time":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	}
	return "a " + goType
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

// list is the envelope of every paged collection.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func pageOf[T any](items []T, page store.Page, key func(T) (time.Time, uuid.UUID)) list[T] {
	out := list[T]{Items: items}
	if out.Items == nil {
		out.Items = []T{}
	}
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
