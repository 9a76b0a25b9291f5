package apiserver

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenAPIClientCompiles generates a Go client from the served document
// with oapi-codegen (pinned in tools/openapi/go.mod) and builds it in a
// throwaway module, so a mainstream generator accepts the document and its
// operationIds and schemas make compilable Go. Nothing is written into the
// repository; modules come from the Go module cache (or the proxy).
func TestOpenAPIClientCompiles(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the generator (it runs wherever make test does)")
	toolsDir, err := filepath.Abs(filepath.Join("..", "tools", "openapi"))
	require.NoError(t, err)

	var s *Server
	raw, err := json.MarshalIndent(s.OpenAPIDocument(), "", "  ")
	require.NoError(t, err)
	tmp := t.TempDir()
	docPath := filepath.Join(tmp, "openapi.json")
	require.NoError(t, os.WriteFile(docPath, raw, 0o600))
	mod := filepath.Join(tmp, "client")
	require.NoError(t, os.MkdirAll(filepath.Join(mod, "gen"), 0o755))
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(toolsDir, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(mod, name), b, 0o600))
	}

	env := append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	gen := exec.CommandContext(t.Context(), goBin, "tool", "oapi-codegen",
		"-generate", "types,client", "-package", "mpegflowapi",
		"-o", filepath.Join(mod, "gen", "client.go"), docPath)
	gen.Dir, gen.Env = toolsDir, env
	if out, err := gen.CombinedOutput(); err != nil {
		if isModuleFetchFailure(string(out)) {
			t.Fatalf("oapi-codegen could not be built: its modules are neither in the module cache nor downloadable through GOPROXY: %s", out)
		}
		t.Fatalf("oapi-codegen refused the document: %v\n%s", err, out)
	}

	build := exec.CommandContext(t.Context(), goBin, "build", "./gen/")
	build.Dir, build.Env = mod, env
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the generated client does not compile:\n%s", out)

	client, err := os.ReadFile(filepath.Join(mod, "gen", "client.go"))
	require.NoError(t, err)
	for _, method := range []string{"ListJobs(", "CreateJob(", "GetJob(", "CancelJob(", "type EncodeSpec struct", "type ListJobsParams struct"} {
		require.Contains(t, string(client), method)
	}
}

// isModuleFetchFailure tells a generator that could not be fetched from a
// generator that ran and failed.
func isModuleFetchFailure(out string) bool {
	for _, s := range []string{"dial tcp", "module lookup disabled", "no such host", "GOPROXY=off"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}
