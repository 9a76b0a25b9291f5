package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSpec says how to run one service.
type procSpec struct {
	name    string
	path    string
	args    []string
	env     []string
	dir     string
	logPath string
	// cred runs the process as another user (PostgreSQL as postgres when we
	// are root); nil keeps ours.
	cred *syscall.Credential
	// stopSig asks the service to shut down cleanly: SIGINT is PostgreSQL's
	// fast shutdown, SIGTERM everyone else's.
	stopSig syscall.Signal
	pidFile string
}

// proc is one running service. Its process leads its own process group, so
// a terminal's Ctrl-C (sent to the foreground group) reaches only us and we
// stop it in order, and a final SIGKILL to the group takes its helpers too.
type proc struct {
	spec    procSpec
	cmd     *exec.Cmd
	logOff  int64
	done    chan struct{}
	waitErr error
}

// startProc starts spec's process with its output appended to its log file.
func startProc(spec procSpec) (*proc, error) {
	logf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", spec.name, err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own descriptor; nothing was buffered in ours
	off, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", spec.name, err)
	}
	if _, err := fmt.Fprintf(logf, "--- %s: %s %s\n", time.Now().Format(time.RFC3339), spec.path, strings.Join(spec.args, " ")); err != nil {
		return nil, fmt.Errorf("write %s log: %w", spec.name, err)
	}
	cmd := exec.Command(spec.path, spec.args...) //nolint:noctx // the service outlives this call: the stack stops it in order (SIGTERM, then SIGKILL to its group)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: spec.cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.name, spec.path, err)
	}
	p := &proc{spec: spec, cmd: cmd, logOff: off, done: make(chan struct{})}
	if spec.pidFile != "" {
		_ = os.WriteFile(spec.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	}
	go func() {
		p.waitErr = cmd.Wait()
		// Whatever the service left in its group (a PostgreSQL backend
		// that outlived its postmaster) goes with it. The group id stays
		// reserved while members exist, so this cannot hit a stranger.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if spec.pidFile != "" {
			_ = os.Remove(spec.pidFile)
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the service to shut down and kills its process group when it
// has not within grace. It returns once the process is reaped.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(p.pid(), p.spec.stopSig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		kids := Descendants(p.pid())
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		killEach(kids)
		<-p.done
		// The leader is reaped; its group's other members and its
		// descendants (PostgreSQL's backends, attached to its shared memory)
		// may still be dying, and a restart on the same data directory would
		// find the memory in use.
		waitGroupGone(p.pid(), grace)
		waitGone(kids, grace)
	}
}

// Descendants lists pid's children, theirs, and so on (from /proc): a
// signal to pid's process group misses those that lead sessions of their
// own, as every PostgreSQL backend and helper does (setsid at its start),
// so a killed postmaster would leave them attached to its shared memory.
func Descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the parenthesised command name: the state, then the parent.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if parent, err := strconv.Atoi(f[1]); err == nil {
			children[parent] = append(children[parent], child)
		}
	}
	var out []int
	for queue := slices.Clone(children[pid]); len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// killEach sends SIGKILL to each of pids.
func killEach(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGone waits, up to limit, until none of pids is alive.
func waitGone(pids []int, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !slices.ContainsFunc(pids, alive) {
			return
		}
	}
}

// waitGroupGone waits, up to limit, until no process is left in group pgid.
func waitGroupGone(pgid int, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
}

// output is what the service logged since this start.
func (p *proc) output() string {
	b, err := os.ReadFile(p.spec.logPath)
	if err != nil || int64(len(b)) < p.logOff {
		return ""
	}
	return string(b[p.logOff:])
}

// failure describes an exit during start-up with the end of the log.
func (p *proc) failure(what string) error {
	return fmt.Errorf("%s %s (%s); last lines of %s:\n%s", p.spec.name, what, exitText(p.waitErr), p.spec.logPath, tail(p.output(), 20))
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// tail returns the last n lines of s, indented.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// stopLeftover stops a service that a previous run (killed with SIGKILL,
// say) left running on this data directory: the pid comes from one of
// pidFiles, and the process counts only when it runs in marker (a directory
// of the data directory; see runsIn), so a recycled pid is never touched.
func stopLeftover(name, marker string, sig syscall.Signal, grace time.Duration, pidFiles ...string) (int, error) {
	for _, f := range pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || pid <= 1 {
			continue
		}
		if !runsIn(pid, marker) {
			continue
		}
		_ = syscall.Kill(pid, sig)
		deadline := time.Now().Add(grace)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			kids := Descendants(pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killEach(kids)
			for i := 0; alive(pid) && i < 100; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			waitGone(kids, grace)
			if alive(pid) {
				return pid, fmt.Errorf("%s left running by a previous run (pid %d) does not stop; kill it by hand", name, pid)
			}
		}
		_ = os.Remove(f)
		return pid, nil
	}
	return 0, nil
}

// runsIn reports whether pid's working directory is dir or its command
// line mentions dir. Redis rewrites its command line (its process title),
// PostgreSQL changes into its data directory; both are recognised.
func runsIn(pid int, dir string) bool {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err == nil && cwd == dir {
		return true
	}
	cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name, is the state.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

// childEnv is the environment with every variable named in drop (or
// starting with a prefix in drop ending in "*") removed and extra added.
func childEnv(drop []string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		skip := false
		for _, d := range drop {
			if p, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(name, p) || name == d {
				skip = true
				break
			}
		}
		if !skip {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
