//go:build e2e

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopTimeout bounds a rig process's clean exit after SIGTERM; it is
// killed after that.
const stopTimeout = 30 * time.Second

// proc is a long-running process of the rig whose output goes to a log
// file that is printed when the test fails.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// startProc starts bin with args and env (appended to a minimal
// environment) and registers its stop, SIGTERM then SIGKILL, as a cleanup.
func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	logPath := filepath.Join(logDir(t), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create log of %s: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("last lines of %s's log (%s):\n%s", name, logPath, tail(logPath, 40))
		}
	})
	return p
}

// stop sends SIGTERM to the process group and waits, then kills it.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		t.Errorf("%s did not stop within %s after SIGTERM; killed", p.name, stopTimeout)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// running fails the test when the process has exited.
func (p *proc) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		var ee *exec.ExitError
		errors.As(p.err, &ee)
		t.Fatalf("%s exited (%v); last lines of its log:\n%s", p.name, p.err, tail(p.log, 40))
	default:
	}
}

// logDir is where a test's rig writes its logs: a directory per top-level
// test (the tests' rigs run side by side), under $MPEGFLOW_E2E_LOG_DIR when
// set (CI keeps them), else a temporary one removed when the test passes.
func logDir(t *testing.T) string {
	name := strings.SplitN(t.Name(), "/", 2)[0]
	if d, ok := logDirs.Load(name); ok {
		return d.(string)
	}
	var d string
	if base := os.Getenv("MPEGFLOW_E2E_LOG_DIR"); base != "" {
		d = filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create the log directory under MPEGFLOW_E2E_LOG_DIR: %v", err)
		}
	} else {
		var err error
		if d, err = os.MkdirTemp("", "mpegflow-e2e-logs-"+name+"-"); err != nil {
			t.Fatalf("create log dir: %v", err)
		}
		t.Cleanup(func() {
			if !t.Failed() {
				_ = os.RemoveAll(d)
			}
		})
	}
	logDirs.Store(name, d)
	return d
}

var logDirs sync.Map // top-level test name → its log directory

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
