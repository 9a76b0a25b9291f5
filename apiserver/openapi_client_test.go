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
	if err != nil {
		unavailable(t, "no go command on PATH: %v", err)
	}
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
			unavailable(t, "oapi-codegen could not be built (modules not in the cache and not downloadable): %s", out)
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

// unavailable skips a test whose tool cannot run here, except in CI
// (CI=true), where a missing tool is a failure.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
