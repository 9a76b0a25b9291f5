package apiserver

import (
	"encoding/json"
	"fmt"
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
// registers (a test checks that every registered route is documented, and
// the apiserver tests check every response they receive against it).
//
// How Go types become JSON Schema (draft 2020-12, as OpenAPI 3.1 uses):
//   - Every named struct type is a component, components/schemas/<Name>, and
//     is referenced with $ref; the name is the Go type name with its first
//     letter upper-cased (createJobRequest → CreateJobRequest). A generic
//     type G[T] is named T+G (list[store.Job] → JobList). componentNames
//     renames a type whose Go name is ambiguous (encodespec.Spec →
//     EncodeSpec). Two different types with one name fail the build of the
//     document (a test builds it), never silently share a component.
//   - Fields follow encoding/json: json tag names, "-" skipped, embedded
//     structs flattened. A field is required unless it is omitempty or a
//     pointer (a pointer tagged openapi:"required" is required and nullable).
//   - Enums, for string fields with a fixed set of values, come from, in
//     order: fieldSchemas below (types this package cannot tag); a field tag
//     enum:"a,b,c"; the field's named type implementing Enum() []string
//     (the hook for named status/lane types); typeEnums (named types of other
//     packages, such as auth.Role).
//   - A field tagged openapi:"ref=Name" gets the schema of the type
//     refTypes registers under Name (json.RawMessage that holds a known
//     document, such as an encode spec); fieldSchemas does the same for
//     fields of types this package does not own.

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
		if part == "*" { // a file name, slashes and all
			parts[i] = "{name}"
		}
	}
	return strings.Join(parts, "/")
}

// fixedOperations are the unauthenticated endpoints server.go registers
// outside the route table.
var fixedOperations = []Route{
	{Method: "GET", Path: "/health", Summary: "Liveness: the process answers (no dependencies checked)", Tag: "health"},
	{Method: "GET", Path: "/ready", Summary: "Readiness: Postgres and Redis answer", Tag: "health"},
	{Method: "GET", Path: "/v1/openapi.json", Summary: "This document", Tag: "health"},
}

// operationKey is the key of a route in operations.
func operationKey(r Route) string { return r.Method + " " + r.Path }

// OpenAPIDocument builds the document. It panics on a route without an
// entry in operations or on two types that would share a component name:
// both are programming errors the tests catch.
func (s *Server) OpenAPIDocument() map[string]any {
	doc, _ := s.buildOpenAPI()
	return doc
}

// buildOpenAPI builds the document and returns the builder too, whose
// record of applied overrides a test reads.
func (s *Server) buildOpenAPI() (map[string]any, *docBuilder) {
	b := newDocBuilder()
	paths := map[string]map[string]any{}
	add := func(r Route, op map[string]any) {
		p := OpenAPIPath(r.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.Method)] = op
	}
	for _, r := range fixedOperations {
		op := b.operation(r, false)
		op["security"] = []any{}
		op["responses"] = map[string]any{
			"200": map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}},
			"503": map[string]any{"description": "A dependency is unavailable", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}},
		}
		add(r, op)
	}
	for _, r := range s.routes() {
		op := b.operation(r, true, "400", "401", "403", "404", "409", "413", "415", "422", "500", "503")
		op["x-permission"] = string(r.Perm)
		add(r, op)
	}
	for _, r := range s.publicRoutes() {
		codes := []string{"400", "403", "404", "410", "413", "415", "422", "500", "503"}
		if r.Path == "/v1/console/session" && r.Method == http.MethodPost {
			codes = append(codes, "401", "429") // the key in the body is refused like a bearer key
		}
		op := b.operation(r, false, codes...)
		op["security"] = []any{}
		add(r, op)
	}
	if ws := paths["/ws"]["get"]; ws != nil {
		ws.(map[string]any)["responses"].(map[string]any)["426"] = problemResponse("Upgrade required: connect with a WebSocket client")
		ws.(map[string]any)["responses"].(map[string]any)["101"] = map[string]any{"description": "Switching protocols: the connection carries job events as JSON text messages"}
	}
	for p, op := range paths {
		if get := op["get"]; get != nil && p == "/v1/jobs/{id}/files/{name}" {
			get.(map[string]any)["responses"].(map[string]any)["416"] = problemResponse("Range not satisfiable: the file has no such range")
		}
	}
	if plan := paths["/v1/pools/{id}/plan"]["get"]; plan != nil {
		content := plan.(map[string]any)["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
		content[yamlMediaType] = map[string]any{"schema": map[string]any{"description": "the same objects as a multi-document YAML stream"}}
	}
	b.schemas["Problem"] = b.structSchema(reflect.TypeOf(Problem{}))
	doc := map[string]any{
		"openapi":  "3.1.0",
		"info":     map[string]any{"title": "MpegFlow API", "version": "v1", "description": "Kubernetes-native video transcoding. Authenticate with an API key: Authorization: Bearer <key>."},
		"servers":  []any{map[string]any{"url": "/", "description": "the server that serves this document"}},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         b.schemas,
		},
	}
	return doc, b
}

func problemResponse(description string) map[string]any {
	return map[string]any{"description": description, "content": map[string]any{
		"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}},
	}}
}

// operation describes one route of the table: its id and query parameters
// (operations), its body and success response from their Go types, and
// problem+json for each of problems. A limited route (every authenticated
// one) shows its rate-limit budget and may answer 429.
func (b *docBuilder) operation(r Route, limited bool, problems ...string) map[string]any {
	doc, ok := operations[operationKey(r)]
	if !ok {
		panic(fmt.Sprintf("openapi: %s has no entry in operations (openapi_operations.go)", operationKey(r)))
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	ok2 := map[string]any{"description": "Success"}
	switch {
	case r.Response != nil:
		ok2["content"] = map[string]any{"application/json": map[string]any{"schema": b.schema(reflect.TypeOf(r.Response))}}
	case r.Raw != "":
		ok2["content"] = map[string]any{r.Raw: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
	}
	responses := map[string]any{strconv.Itoa(status): ok2}
	for code, description := range doc.Also {
		also := maps.Clone(ok2)
		also["description"] = description
		responses[strconv.Itoa(code)] = also
	}
	for _, code := range problems {
		responses[code] = problemResponse("Problem (RFC 9457)")
	}
	if limited {
		ok2["headers"] = budgetHeaders
		rl := problemResponse("Rate limited (RFC 9457 problem rate-limited): wait Retry-After seconds")
		rl["headers"] = rateLimitHeaders
		responses["429"] = rl
	}
	op := map[string]any{
		"summary":     r.Summary,
		"tags":        []string{r.Tag},
		"operationId": doc.ID,
		"responses":   responses,
	}
	params := []any{}
	for _, part := range strings.Split(r.Path, "/") {
		if name, found := strings.CutPrefix(part, ":"); found {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": pathParamSchema(r.Path, name)})
		}
		if part == "*" {
			params = append(params, map[string]any{"name": "name", "in": "path", "required": true,
				"description": "the output's name, as the job's outputs list it (it may hold slashes: 720p/index.m3u8)", "schema": map[string]any{"type": "string"}})
		}
	}
	for _, q := range doc.Query {
		params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": q.Schema})
	}
	if r.Method == http.MethodPost && r.Path == "/v1/jobs" {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "description": "a retry with the same key answers the job the first request created", "schema": map[string]any{"type": "string", "maxLength": maxIdempotencyKey}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if r.Body != nil {
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": b.schema(reflect.TypeOf(r.Body))}}}
	}
	return op
}

// textIDs are the path parameters that are not UUIDs: pool ids (short
// names the server generates) and worker ids (pod names). Every other id a
// path carries is a UUID; a handler answers 404 for a malformed one.
var textIDs = map[string]string{
	"/v1/pools/:id":   "pool id",
	"/v1/workers/:id": "worker id (the encode pod's name)",
}

func pathParamSchema(path, name string) map[string]any {
	for prefix, description := range textIDs {
		if name == "id" && (path == prefix || strings.HasPrefix(path, prefix+"/")) {
			return map[string]any{"type": "string", "description": description}
		}
	}
	return map[string]any{"type": "string", "format": "uuid"}
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

// docBuilder collects the components the schemas of one document refer to.
type docBuilder struct {
	schemas   map[string]any
	names     map[string]reflect.Type // component name → the type it describes
	overrides map[string]func(*docBuilder) map[string]any
	applied   map[string]bool // the overrides used, for a test
	// input is set while describing a document a client sends that the
	// server completes with defaults (an encode spec): its components are
	// named <Name>Input and no field is required.
	input bool
}

func newDocBuilder() *docBuilder {
	return &docBuilder{schemas: map[string]any{}, names: map[string]reflect.Type{}, overrides: fieldSchemas(), applied: map[string]bool{}}
}

// schema describes a Go type, as a $ref for named struct types.
func (b *docBuilder) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case uuidType:
		return map[string]any{"type": "string", "format": "uuid"}
	case rawType:
		return map[string]any{}
	}
	if values := enumOf(t); values != nil {
		return map[string]any{"type": "string", "enum": values}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(b.schema(t.Elem()))
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": b.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return b.structSchema(t)
		}
		name := componentName(t)
		if b.input {
			name += "Input"
		}
		return b.ref(name, t)
	}
	return map[string]any{}
}

// inputSchema describes t as a client may send it (see docBuilder.input).
func (b *docBuilder) inputSchema(t reflect.Type) map[string]any {
	saved := b.input
	b.input = true
	defer func() { b.input = saved }()
	return b.schema(t)
}

// ref registers t as the component name (once) and refers to it.
func (b *docBuilder) ref(name string, t reflect.Type) map[string]any {
	if prev, ok := b.names[name]; ok {
		if prev != t {
			panic(fmt.Sprintf("openapi: %s and %s would both be the component %s; add one to componentNames", prev, t, name))
		}
	} else {
		b.names[name] = t
		b.schemas[name] = map[string]any{} // placeholder: recursive types end here
		b.schemas[name] = b.structSchema(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// nullable lets a schema also be null.
func nullable(s map[string]any) map[string]any {
	if typ, ok := s["type"].(string); ok {
		s["type"] = []any{typ, "null"}
		if e, ok := s["enum"].([]string); ok {
			s["enum"] = append(append([]any{}, toAny(e)...), nil)
		}
		return s
	}
	if len(s) == 0 {
		return s
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// componentName is a named type's component name (see the top of the file).
func componentName(t reflect.Type) string {
	if name, ok := componentNames[t]; ok {
		return name
	}
	name := t.Name()
	if base, args, ok := strings.Cut(name, "["); ok {
		var prefix strings.Builder
		for _, arg := range strings.Split(strings.TrimSuffix(args, "]"), ",") {
			arg = arg[strings.LastIndex(arg, ".")+1:]
			prefix.WriteString(upperFirst(arg))
		}
		name = prefix.String() + upperFirst(base)
	}
	return upperFirst(name)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// structSchema is the object schema of a struct's fields.
func (b *docBuilder) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	b.addStructFields(t, props, &required)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	if optionalComponents[t] || b.input {
		delete(s, "required")
	}
	return s
}

func (b *docBuilder) addStructFields(t reflect.Type, props map[string]any, required *[]string) {
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
				b.addStructFields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = b.fieldSchema(t, f, name)
		// A pointer is optional unless tagged openapi:"required" (a
		// number whose absence differs from zero).
		if !strings.Contains(opts, "omitempty") && (f.Type.Kind() != reflect.Pointer || openAPITag(f, "required") != "") {
			*required = append(*required, name)
		}
	}
}

// fieldSchema applies the overrides of one field (see the top of the file).
func (b *docBuilder) fieldSchema(owner reflect.Type, f reflect.StructField, name string) map[string]any {
	key := componentName(owner) + "." + name
	if override, ok := b.overrides[key]; ok {
		b.applied[key] = true
		return override(b)
	}
	if ref := openAPITag(f, "ref"); ref != "" {
		t, ok := refTypes[ref]
		if !ok {
			panic(fmt.Sprintf("openapi: %s.%s names ref=%s, which refTypes does not register", owner, f.Name, ref))
		}
		s := b.schema(t)
		if f.Type.Kind() == reflect.Pointer {
			s = nullable(s)
		}
		return s
	}
	if values := f.Tag.Get("enum"); values != "" {
		s := map[string]any{"type": "string", "enum": strings.Split(values, ",")}
		switch f.Type.Kind() {
		case reflect.Pointer:
			return nullable(s)
		case reflect.Slice:
			return map[string]any{"type": "array", "items": s}
		}
		return s
	}
	return b.schema(f.Type)
}

// openAPITag reads key of a field's openapi tag: openapi:"required" gives
// "required" for key required; openapi:"ref=EncodeSpec" gives "EncodeSpec"
// for key ref.
func openAPITag(f reflect.StructField, key string) string {
	for _, part := range strings.Split(f.Tag.Get("openapi"), ",") {
		k, v, hasValue := strings.Cut(part, "=")
		if k != key {
			continue
		}
		if hasValue {
			return v
		}
		return k
	}
	return ""
}

// enumer is the hook for named string types with a fixed set of values.
type enumer interface{ Enum() []string }

var enumerType = reflect.TypeOf((*enumer)(nil)).Elem()

func enumOf(t reflect.Type) []string {
	if t.Kind() != reflect.String {
		return nil
	}
	if t.Implements(enumerType) {
		e, _ := reflect.Zero(t).Interface().(enumer)
		return e.Enum()
	}
	return typeEnums[t]
}
