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
	var kid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(kidFile)
		if err != nil {
			return false
		}
		kid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && alive(kid)
	}, 10*time.Second, 10*time.Millisecond)
	sid, err := unix.Getsid(kid)
	require.NoError(t, err)
	require.Equal(t, kid, sid, "the child leads its own session")

	p.stop(100 * time.Millisecond)
	require.True(t, p.exited())
	require.False(t, alive(kid), "the session leader the service started is gone once stop returns")
}
