package apiserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// The OpenAPI 3.1 document is derived from the route table and the Go types
// of request and response bodies, so it cannot drift from what the server
// registers (a test checks that every registered route is documented).

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
)

func (s *Server) openAPI(c *fiber.Ctx) error {
	openAPIOnce.Do(func() { openAPIDoc = mustJSON(s.OpenAPIDocument()) })
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPIDoc)
}

// OpenAPIPath turns Fiber's /v1/jobs/:id into OpenAPI's /v1/jobs/{id}.
func OpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if strings.HasPrefix(part, ":") {
			parts[i] = "{" + strings.TrimPrefix(part, ":") + "}"
		}
	}
	return strings.Join(parts, "/")
}

// OpenAPIDocument builds the document.
func (s *Server) OpenAPIDocument() map[string]any {
	paths := map[string]map[string]any{}
	add := func(method, path string, op map[string]any) {
		p := OpenAPIPath(path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(method)] = op
	}
	problemRef := map[string]any{"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
	public := func(summary string) map[string]any {
		return map[string]any{"summary": summary, "security": []any{}, "responses": map[string]any{
			"200": map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}},
			"503": map[string]any{"description": "A dependency is unavailable"},
		}}
	}
	add("GET", "/health", public("Liveness: the process answers (no dependencies checked)"))
	add("GET", "/ready", public("Readiness: Postgres and Redis answer"))
	add("GET", "/v1/openapi.json", public("This document"))

	for _, r := range s.routes() {
		op := operation(r, problemRef, true, "400", "401", "403", "404", "409", "413", "422")
		op["x-permission"] = string(r.Perm)
		add(r.Method, r.Path, op)
	}
	for _, r := range s.publicRoutes() {
		op := operation(r, problemRef, false, "400", "403", "404", "410", "413", "422")
		op["security"] = []any{}
		add(r.Method, r.Path, op)
	}
	return map[string]any{
		"openapi":  "3.1.0",
		"info":     map[string]any{"title": "MpegFlow API", "version": "v1", "description": "Kubernetes-native video transcoding. Authenticate with an API key: Authorization: Bearer <key>."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         map[string]any{"Problem": schemaOf(reflect.TypeOf(Problem{}))},
		},
	}
}

// operation describes one route of the table: its body and success
// response from their Go types, and problem+json for each of problems.
// A limited route (every authenticated one) shows its rate-limit budget
// and may answer 429.
func operation(r Route, problemRef map[string]any, limited bool, problems ...string) map[string]any {
	status := r.Status
	if status == 0 {
		status = 200
	}
	ok := map[string]any{"description": "Success"}
	if r.Response != nil {
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.Response))}}
	}
	responses := map[string]any{strconv.Itoa(status): ok}
	for _, code := range problems {
		responses[code] = map[string]any{"description": "Problem (RFC 9457)", "content": problemRef["content"]}
	}
	if limited {
		ok["headers"] = budgetHeaders
		responses["429"] = map[string]any{"description": "Rate limited (RFC 9457 problem rate-limited): wait Retry-After seconds", "content": problemRef["content"], "headers": rateLimitHeaders}
	}
	op := map[string]any{
		"summary":     r.Summary,
		"tags":        []string{r.Tag},
		"operationId": strings.ToLower(r.Method) + strings.ReplaceAll(OpenAPIPath(r.Path), "/", "_"),
		"responses":   responses,
	}
	var params []any
	for _, part := range strings.Split(r.Path, "/") {
		if name, found := strings.CutPrefix(part, ":"); found {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
	}
	if r.Method == http.MethodPost && r.Path == "/v1/jobs" {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string", "maxLength": maxIdempotencyKey}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if r.Body != nil {
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.Body))}}}
	}
	return op
}

// budgetHeaders document the budget every rate-limited response shows;
// rateLimitHeaders add Retry-After for a refused request.
var (
	budgetHeaders = map[string]any{
		HeaderRateLimitLimit:     map[string]any{"description": "size of the budget closest to empty (API key, organization, or failed authentications of the client address): requests allowed at once", "schema": map[string]any{"type": "integer"}},
		HeaderRateLimitRemaining: map[string]any{"description": "requests that budget allows now", "schema": map[string]any{"type": "integer"}},
		HeaderRateLimitReset:     map[string]any{"description": "seconds (rounded up) until that budget is full again", "schema": map[string]any{"type": "integer"}},
	}
	rateLimitHeaders = func() map[string]any {
		h := map[string]any{fiber.HeaderRetryAfter: map[string]any{"description": "seconds (rounded up) until the request can succeed", "schema": map[string]any{"type": "integer"}}}
		maps.Copy(h, budgetHeaders)
		return h
	}()
)

var (
	timeType = reflect.TypeOf(time.Time{})
	uuidType = reflect.TypeOf(uuid.UUID{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schemaOf describes a Go type as JSON Schema (draft 2020-12, as OpenAPI 3.1
// uses), following encoding/json's rules for names and embedding.
func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case uuidType:
		return map[string]any{"type": "string", "format": "uuid"}
	case rawType:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		if typ, ok := s["type"].(string); ok {
			s["type"] = []any{typ, "null"}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addStructFields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

func addStructFields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addStructFields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
		// A pointer is optional unless tagged openapi:"required" (a
		// number whose absence differs from zero).
		if !strings.Contains(opts, "omitempty") && (f.Type.Kind() != reflect.Pointer || f.Tag.Get("openapi") == "required") {
			*required = append(*required, name)
		}
	}
}
