// Package clitest runs a cobra command tree in process for tests: the
// CLI's own tests (package cli) and the whole binary's (cmd/mpegflow) share
// it. It imports neither, so both can use it.
package clitest

import (
	"bytes"
	"io"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Result is one in-process run of a command tree.
type Result struct {
	Stdout, Stderr string
	Err            error
	exitCode       func(error) int
}

// Run executes root with args and stdin as its input (nil: none), and
// returns what it printed and its error; exitCode is how main turns that
// error into the process's exit status.
func Run(t *testing.T, root *cobra.Command, exitCode func(error) int, stdin io.Reader, args ...string) Result {
	t.Helper()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err, exitCode: exitCode}
}

// OK requires the run to succeed and returns its stdout.
func (r Result) OK(t *testing.T) string {
	t.Helper()
	require.NoError(t, r.Err, "stderr: %s", r.Stderr)
	return r.Stdout
}

// Failed requires a one-line error with the given exit code, no usage dump
// and no stack trace, and returns the line main would print
// ("mpegflow: <err>").
func (r Result) Failed(t *testing.T, code int) string {
	t.Helper()
	require.Error(t, r.Err, "stdout: %s", r.Stdout)
	line := "mpegflow: " + r.Err.Error()
	if r.exitCode != nil {
		assert.Equal(t, code, r.exitCode(r.Err), line)
	}
	assert.NotContains(t, line, "\n")
	assert.NotContains(t, r.Stderr+r.Stdout, "Usage:")
	assert.NotContains(t, r.Stderr+r.Stdout, "goroutine ")
	return line
}

// Completed wraps the outcome of a run that executed elsewhere (a command
// started in the background) as a Result.
func Completed(stdout, stderr string, err error, exitCode func(error) int) Result {
	return Result{Stdout: stdout, Stderr: stderr, Err: err, exitCode: exitCode}
}
