package stack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestStopKillsWhatLeadsItsOwnSession: a service that ignores its stop
// signal is killed after its grace with everything it started, including
// a child that leads a session of its own, as PostgreSQL's backends do
// (a signal to the service's process group misses it); stop returns once
// that child is gone, so a restart finds nothing attached to what the
// service held.
func TestStopKillsWhatLeadsItsOwnSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kidFile := filepath.Join(dir, "kid")
	p, err := startProc(procSpec{
		name: "stubborn", path: "/bin/sh", dir: dir, logPath: filepath.Join(dir, "log"), stopSig: syscall.SIGTERM,
		args: []string{"-c", `trap "" TERM; setsid sleep 600 & echo $! > kid.tmp && mv kid.tmp kid; wait`},
	})
	require.NoError(t, err)
	t.Cleanup(func() { p.stop(100 * time.Millisecond) }) // a failed test leaves nothing running
	var kid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(kidFile)
		if err != nil {
			return false
		}
		if kid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return false
		}
		sid, err := unix.Getsid(kid)
		return err == nil && sid == kid // started, and leading its own session
	}, 10*time.Second, 10*time.Millisecond, "the service's child leads a session of its own")

	p.stop(100 * time.Millisecond)
	require.True(t, p.exited())
	require.False(t, alive(kid), "the session leader the service started is gone once stop returns")
}
