package apiserver

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documented is every route the document describes: the fixed endpoints,
// the authenticated table and the public routes.
func documented() []Route {
	var s *Server // routes() only takes method values; nothing is called
	return slices.Concat(fixedOperations, s.routes(), s.publicRoutes())
}

var operationIDPattern = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)

// TestOpenAPIOperationsMatchRoutes keeps openapi_operations.go and the route
// table in step: every route has an entry, every entry a route, and the ids
// are unique identifiers a client generator can use as method names.
func TestOpenAPIOperationsMatchRoutes(t *testing.T) {
	t.Parallel()
	routes := map[string]bool{}
	for _, r := range documented() {
		key := operationKey(r)
		assert.False(t, routes[key], "%s is registered twice", key)
		routes[key] = true
		assert.Contains(t, operations, key, "%s has no entry in operations (openapi_operations.go)", key)
	}
	ids := map[string]string{}
	for key, op := range operations {
		assert.True(t, routes[key], "operations has %s, which is no route", key)
		assert.Regexp(t, operationIDPattern, op.ID, "%s", key)
		if other, dup := ids[op.ID]; dup {
			t.Errorf("operationId %s is used by both %s and %s", op.ID, key, other)
		}
		ids[op.ID] = key
		names := map[string]bool{}
		for _, q := range op.Query {
			assert.False(t, names[q.Name], "%s documents query parameter %s twice", key, q.Name)
			names[q.Name] = true
			assert.NotEmpty(t, q.Description, "%s ?%s", key, q.Name)
			assert.NotEmpty(t, q.Schema["type"], "%s ?%s", key, q.Name)
		}
	}
}

// TestOpenAPIOverridesApply fails when a schema override names a property
// the document does not have (a field renamed or moved to api/v1).
func TestOpenAPIOverridesApply(t *testing.T) {
	t.Parallel()
	var s *Server
	_, b := s.buildOpenAPI()
	var unused []string
	for key := range b.overrides {
		if !b.applied[key] {
			unused = append(unused, key)
		}
	}
	sort.Strings(unused)
	assert.Empty(t, unused, "fieldSchemas entries that match no property")
}

var (
	kinDocOnce sync.Once
	kinDoc     *openapi3.T
	kinDocErr  error
)

// loadOpenAPI parses the document with kin-openapi and validates it as
// OpenAPI 3.1 (once per test binary: the document is static).
func loadOpenAPI(raw []byte) (*openapi3.T, error) {
	kinDocOnce.Do(func() {
		loader := openapi3.NewLoader()
		kinDoc, kinDocErr = loader.LoadFromData(raw)
		if kinDocErr != nil {
			kinDocErr = fmt.Errorf("load the OpenAPI document: %w", kinDocErr)
			return
		}
		if err := kinDoc.Validate(context.Background()); err != nil {
			kinDocErr = fmt.Errorf("validate the OpenAPI document: %w", err)
		}
	})
	return kinDoc, kinDocErr
}

// TestOpenAPIDocumentIsValid checks the served document with a real
// OpenAPI 3.1 validator, and what clients rely on: components referenced by
// name, typed encode specs, enums, query parameters, servers.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp := f.do(t, "GET", "/v1/openapi.json", "", nil)
	require.Equal(t, 200, resp.Status)
	doc, err := loadOpenAPI(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	require.NotEmpty(t, doc.Servers)
	assert.Equal(t, "/", doc.Servers[0].URL)

	schemas := doc.Components.Schemas
	for _, name := range []string{"Job", "JobPage", "JobRequest", "EncodeSpec", "Rendition", "JobUsage", "Usage", "OutputRecord", "Webhook", "Problem"} {
		assert.Contains(t, schemas, name)
	}
	job := schemas["Job"].Value
	assert.Equal(t, "#/components/schemas/EncodeSpec", job.Properties["spec"].Ref)
	assert.Equal(t, "#/components/schemas/JobUsage", job.Properties["usage"].Ref)
	assert.Equal(t, "#/components/schemas/OutputRecord", job.Properties["outputs"].Value.Items.Ref)
	assert.ElementsMatch(t, []any{"queued", "running", "retry_wait", "completed", "failed", "cancelled"}, job.Properties["status"].Value.Enum)
	assert.ElementsMatch(t, []any{"live", "backfill"}, job.Properties["lane"].Value.Enum)
	assert.Contains(t, schemas["Webhook"].Value.Properties["events"].Value.Items.Value.Enum, "job.completed")
	// A spec a client sends may leave out what the server defaults; the
	// spec it answers has every default filled.
	assert.Equal(t, "#/components/schemas/EncodeSpecInput", schemas["JobRequest"].Value.Properties["spec"].Ref)
	assert.Equal(t, "#/components/schemas/EncodeSpecInput", schemas["WorkflowRequest"].Value.Properties["spec"].Ref)
	assert.Equal(t, "#/components/schemas/EncodeSpec", schemas["Workflow"].Value.Properties["spec"].Ref)
	assert.Empty(t, schemas["RenditionInput"].Value.Required)
	assert.Contains(t, schemas["Rendition"].Value.Required, "name")
	assert.ElementsMatch(t, []any{"h264", "hevc", "av1", "vp9"}, schemas["RenditionInput"].Value.Properties["codec"].Value.Enum)
	assert.Equal(t, "#/components/schemas/Job", schemas["JobPage"].Value.Properties["items"].Value.Items.Ref)
	assert.Contains(t, schemas["EncodeSpec"].Value.Properties, "renditions")

	list := doc.Paths.Find("/v1/jobs").Get
	assert.Equal(t, "listJobs", list.OperationID)
	for _, name := range []string{"status", "pool", "created_after", "created_before", "limit", "cursor"} {
		p := list.Parameters.GetByInAndName("query", name)
		if assert.NotNil(t, p, "?%s", name) && name == "status" {
			assert.Contains(t, p.Schema.Value.Enum, "retry_wait")
		}
	}
	jobID := doc.Paths.Find("/v1/jobs/{id}").Get.Parameters.GetByInAndName("path", "id")
	assert.Equal(t, "uuid", jobID.Schema.Value.Format)
	poolID := doc.Paths.Find("/v1/pools/{id}/plan").Get.Parameters.GetByInAndName("path", "id")
	assert.Empty(t, poolID.Schema.Value.Format, "pool ids are not UUIDs")
	ws := doc.Paths.Find("/ws").Get
	assert.NotNil(t, ws.Parameters.GetByInAndName("query", "jobs"))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			assert.Regexp(t, operationIDPattern, op.OperationID, "%s %s", method, path)
		}
	}
}
