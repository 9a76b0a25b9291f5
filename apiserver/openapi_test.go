package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIListsEveryRoute reads the served document and checks that every
// route Fiber registered (not only the table's) has an operation in it.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp := f.do(t, "GET", "/v1/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, resp.Status)
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	resp.json(t, &doc)
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	n := 0
	for _, r := range f.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		n++
		op, ok := doc.Paths[OpenAPIPath(r.Path)][strings.ToLower(r.Method)]
		if assert.True(t, ok, "%s %s is not in the OpenAPI document", r.Method, r.Path) {
			assert.NotEmpty(t, op["summary"], "%s %s has no summary", r.Method, r.Path)
			assert.NotEmpty(t, op["responses"], "%s %s has no responses", r.Method, r.Path)
		}
	}
	assert.Greater(t, n, 40, "expected the whole API to be registered")
	// The job submission documents its body, with the fields the handler
	// reads, as a named component.
	post := doc.Paths["/v1/jobs"]["post"]
	body := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	ref, _ := body["$ref"].(string)
	name, found := strings.CutPrefix(ref, "#/components/schemas/")
	require.True(t, found, "the body is not a component: %v", body)
	require.Contains(t, doc.Components.Schemas, name)
	props := doc.Components.Schemas[name]["properties"].(map[string]any)
	for _, field := range []string{"input", "workflow_id", "workflow", "spec", "pool", "lane", "priority"} {
		assert.Contains(t, props, field)
	}
}
