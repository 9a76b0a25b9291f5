package main

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	want := "mpegflow dev (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, a := range [][]string{{"version"}, {"--version"}} {
		assert.Equal(t, want, runCLI(t, nil, a...).OK(t), a)
	}
	assert.Equal(t, "mpegflow: usage: mpegflow version", runCLI(t, nil, "version", "extra").Failed(t, 2))
}

// TestUsageErrorsExit2 checks that whatever cannot be run as typed exits 2
// with one line, at the top level and in every kind of command group.
func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown command":          {[]string{"jbos"}, `mpegflow: unknown command "jbos" for "mpegflow"; did you mean "jobs"? (see 'mpegflow --help')`},
		"unknown top-level flag":   {[]string{"--bogus"}, `mpegflow: unknown flag: --bogus (see 'mpegflow --help')`},
		"unknown subcommand":       {[]string{"migrate", "sideways"}, `mpegflow: unknown command "sideways" for "mpegflow migrate" (see 'mpegflow migrate --help')`},
		"unknown API subcommand":   {[]string{"pools", "lisst"}, `mpegflow: unknown command "lisst" for "mpegflow pools"; did you mean "list"? (see 'mpegflow pools --help')`},
		"unknown flag of a leaf":   {[]string{"migrate", "up", "--bogus"}, `mpegflow: unknown flag: --bogus (see 'mpegflow migrate up --help')`},
		"unknown flag of a server": {[]string{"serve", "--bogus"}, `mpegflow: unknown flag: --bogus (see 'mpegflow serve --help')`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, runCLI(t, nil, tc.args...).Failed(t, 2))
		})
	}
	// A group named alone still shows its help.
	out := runCLI(t, nil, "migrate").OK(t)
	assert.True(t, strings.HasPrefix(out, "Apply, roll back or show database migrations"), out)
}
