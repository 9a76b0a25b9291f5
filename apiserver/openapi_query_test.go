package apiserver

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// queryReads finds the query parameter names handlers read by name:
// c.Query("x"), timeParam(c, "x"), intParam(c, "x", ...).
var queryReads = regexp.MustCompile(`(?:\.Query|timeParam|intParam)\((?:c, )?"([a-z_]+)"`)

// TestOpenAPIQueryParametersDocumented fails when a handler reads a query
// parameter no operation documents (the parameters pageParams reads are in
// pageQuery).
func TestOpenAPIQueryParametersDocumented(t *testing.T) {
	t.Parallel()
	documentedNames := map[string]bool{}
	for _, op := range operations {
		for _, q := range op.Query {
			documentedNames[q.Name] = true
		}
	}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	read := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range queryReads.FindAllStringSubmatch(string(src), -1) {
			read++
			assert.True(t, documentedNames[m[1]], "%s reads the query parameter %s, which no operation in openapi_operations.go documents", file, m[1])
		}
	}
	assert.Greater(t, read, 8, "the pattern no longer finds how handlers read query parameters")
}

// TestOpenAPIQueryParametersAreRead sends every documented query parameter
// that has a constrained schema with a value the schema refuses, and
// expects the handler to refuse it too (422 naming the parameter): the
// handler really reads what the document lists, under that name.
func TestOpenAPIQueryParametersAreRead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.SuperAdmin]
	// Parameters whose every value is valid for the handler, or read only
	// after a step the fixture cannot take.
	unconstrained := map[string]bool{
		"GET /v1/jobs pool": true, // any pool id filters (an unknown one matches nothing)
		"GET /ws jobs":      true, // read after the WebSocket upgrade (websocket_test.go covers it)
		"GET /ws api_key":   true, // a credential (middleware_test covers it)
	}
	checked := 0
	for _, r := range documented() {
		op := operations[operationKey(r)]
		for _, q := range op.Query {
			name := operationKey(r) + " " + q.Name
			if unconstrained[name] {
				continue
			}
			t.Run(name, func(t *testing.T) {
				path := strings.NewReplacer(":id", uuid.NewString(), ":delivery_id", uuid.NewString()).Replace(r.Path)
				target := path + "?" + url.Values{q.Name: {invalidFor(q)}}.Encode()
				resp := f.do(t, r.Method, target, key, nil)
				require.Equal(t, http.StatusUnprocessableEntity, resp.Status, "%s: %s", target, resp.Body)
				assert.Contains(t, resp.fields(t), q.Name)
			})
			checked++
		}
	}
	assert.Greater(t, checked, 10)
}

// invalidFor is a value q's schema refuses.
func invalidFor(q queryParam) string {
	switch {
	case q.Schema["enum"] != nil:
		return "not-a-value"
	case q.Schema["format"] != nil:
		return "yesterday"
	case q.Schema["type"] == "integer":
		return "-7"
	}
	return "not-a-" + q.Name
}
