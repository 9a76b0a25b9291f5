package chart_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// promqlResult is what tools/promql answered for one expression: the
// metric names its selectors name, or Prometheus's parse error.
type promqlResult struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
	Error   string   `json:"error"`
}

// parsePromQL parses each expression with Prometheus's parser (tools/promql,
// pinned in that module's go.mod, so the chart's module does not depend on
// Prometheus): the test fails for any that does not parse, and gets the
// metric names each selects.
func parsePromQL(t *testing.T, exprs []string) map[string][]string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "tools", "promql"))
	require.NoError(t, err)
	for _, e := range exprs {
		require.NotContains(t, e, "\n", "one expression a line")
	}
	// go run builds it once into Go's build cache and relinks it after.
	cmd := exec.CommandContext(t.Context(), "go", "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	cmd.Stdin = strings.NewReader(strings.Join(exprs, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	got := map[string][]string{}
	var refused []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var r promqlResult
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		if r.Error != "" {
			refused = append(refused, r.Expr+": "+r.Error)
			continue
		}
		got[r.Expr] = r.Metrics
	}
	require.Empty(t, refused, "PromQL that Prometheus refuses")
	require.NoError(t, runErr, "tools/promql: %s", stderr.String())
	require.Len(t, got, len(exprs), "an answer for each expression")
	return got
}
