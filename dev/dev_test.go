package dev_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/dev/stack"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
)

// devBuild builds the mpegflow command into dir, as a user would run it.
func devBuild(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first on PATH
	require.NoError(t, err)
	bin := filepath.Join(dir, "mpegflow")
	out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/mpegflow").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// devVersityGW is the S3 server `mpegflow dev` needs: $VERSITYGW (make test
// sets it) or ~/.cache/mpegflow/tools/versitygw.
func devVersityGW(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VERSITYGW")
	if p == "" {
		p = filepath.Join("..", "bin", "tools", "versitygw")
	}
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("versitygw not found at %s (%v): `mpegflow dev` needs it for its S3 store; run `make tools` or set VERSITYGW", abs, err)
	}
	return abs
}

// devProcess is one running `mpegflow dev`.
type devProcess struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr *bytes.Buffer // read it only once exited is closed
	ready  chan struct{} // closed when the banner is printed
	exited chan struct{}
	err    error
}

func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func devStart(t *testing.T, bin string, env []string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev"}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &devProcess{cmd: cmd, stderr: &stderr, ready: make(chan struct{}), exited: make(chan struct{})}
	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		sc := bufio.NewScanner(pipe)
		closed := false
		for sc.Scan() {
			p.mu.Lock()
			p.stdout.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !closed && strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
				close(p.ready)
				closed = true
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
	}()
	go func() {
		readDone.Wait()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("mpegflow dev stdout:\n%s\nstderr (last 4 KiB):\n%s", p.output(), devLastBytes(stderr.String(), 4096))
		}
	})
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("mpegflow dev exited before it was ready (%v):\n%s\n%s", p.err, p.output(), devLastBytes(stderr.String(), 4096))
	case <-time.After(3 * time.Minute):
		t.Fatalf("mpegflow dev not running after 3 minutes:\n%s", p.output())
	}
	return p
}

func devLastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

var (
	devAPIURL = regexp.MustCompile(`(?m)^\s+API:\s+(\S+)$`)
	devAPIKey = regexp.MustCompile(`(?m)^\s+API key:\s+(\S+)$`)
)

// running reports whether pid exists and is not a zombie.
func devProcessRunning(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// devProcessesIn lists processes whose command line or working
// directory is inside dir (what `pgrep -f dir` and lsof would find).
func devProcessesIn(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if bytes.Contains(cmdline, []byte(dir)) || strings.HasPrefix(cwd, dir) {
			pid, _ := strconv.Atoi(e.Name())
			if devProcessRunning(pid) {
				out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return out
}

func devGetOrganization(t *testing.T, server, key string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, server+"/v1/organization", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func devWaitReady(t *testing.T, server string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(server + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/ready did not answer 200 within 60 s (last error %v)", server, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// devStop sends SIGINT (Ctrl-C) and requires a clean exit within 10 s that
// leaves none of its processes behind.
func devStop(t *testing.T, p *devProcess, data string) {
	t.Helper()
	kids := stack.Descendants(p.cmd.Process.Pid)
	require.NotEmpty(t, kids, "mpegflow dev runs its services as child processes")
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("mpegflow dev still runs 10 s after SIGINT")
	}
	t.Logf("mpegflow dev stopped %s after SIGINT", time.Since(start).Round(time.Millisecond))
	require.NoError(t, p.err, "a Ctrl-C is a clean exit")
	for _, pid := range kids {
		assert.False(t, devProcessRunning(pid), "process %d of mpegflow dev outlived it", pid)
	}
	assert.Empty(t, devProcessesIn(data), "processes still using the data directory")
}

// devEnv is this process's environment without the services the test
// harness provides (dev must start its own, and the CLI use dev's context),
// with the CLI's configuration at cliPath and versitygw at vgw.
func devEnv(cliPath, vgw string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL", name == "REDIS_URL", strings.HasPrefix(name, "S3_"), strings.HasPrefix(name, "MPEGFLOW_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "MPEGFLOW_CONFIG="+cliPath, "MPEGFLOW_VERSITYGW="+vgw)
}

// TestDevRunsTheStackAndSurvivesARestart runs the real binary: `mpegflow dev`
// starts its own Postgres, Redis and S3 store (never the test harness's),
// prints a key that works, writes the CLI context with mode 0600, stops
// cleanly on Ctrl-C, and on a second run serves the same organization with
// the same key.
func TestDevRunsTheStackAndSurvivesARestart(t *testing.T) {
	t.Parallel()
	vgw := devVersityGW(t)
	tmp := t.TempDir()
	bin := devBuild(t, tmp)
	data := filepath.Join(tmp, "data")
	cliPath := filepath.Join(tmp, "config", "cli.json")
	env := devEnv(cliPath, vgw)
	args := []string{"--data", data, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}

	p := devStart(t, bin, env, args...)
	m := devAPIURL.FindStringSubmatch(p.output())
	require.Len(t, m, 2, p.output())
	server := m[1]
	m = devAPIKey.FindStringSubmatch(p.output())
	require.Len(t, m, 2, p.output())
	key := m[1]
	devWaitReady(t, server)

	status, org := devGetOrganization(t, server, key)
	require.Equal(t, http.StatusOK, status, org)
	assert.Equal(t, "Local", org["name"])
	status, _ = devGetOrganization(t, server, "mfk_notakey_notakeynotakeynotakeynotakeynotake")
	assert.Equal(t, http.StatusUnauthorized, status, "the API checks keys")

	fi, err := os.Stat(cliPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the CLI configuration holds a key")
	cfg, err := cliconfig.Load(cliPath)
	require.NoError(t, err)
	assert.Equal(t, "dev", cfg.Current)
	assert.Equal(t, cliconfig.Context{Server: server, APIKey: key}, cfg.Contexts["dev"])
	for _, f := range []string{"owner-key", "server-secret", "s3-credentials.json", "postgres-password", "redis-password", "dev.json"} {
		fi, err := os.Stat(filepath.Join(data, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	var passwords []string
	for _, f := range []string{"postgres-password", "redis-password"} {
		b, err := os.ReadFile(filepath.Join(data, f))
		require.NoError(t, err)
		passwords = append(passwords, strings.TrimSpace(string(b)))
	}
	info, err := os.ReadFile(filepath.Join(data, "dev.json"))
	require.NoError(t, err)
	for _, pw := range passwords {
		assert.Contains(t, string(info), pw, "dev.json's URLs carry the passwords")
	}

	envCmd := exec.Command(bin, "dev", "env", "--data", data)
	envCmd.Env = env
	out, err := envCmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "export MPEGFLOW_SERVER="+server+"\nexport MPEGFLOW_API_KEY="+key+"\n", string(out))

	devStop(t, p, data)
	for _, pw := range passwords {
		assert.NotContains(t, p.output(), pw, "stdout shows a service password")
		assert.NotContains(t, p.stderr.String(), pw, "the log shows a service password")
	}

	// Second run: same data directory, same organization and key.
	p = devStart(t, bin, env, args...)
	m = devAPIURL.FindStringSubmatch(p.output())
	require.Len(t, m, 2, p.output())
	server = m[1]
	m = devAPIKey.FindStringSubmatch(p.output())
	require.Len(t, m, 2, p.output())
	assert.Equal(t, key, m[1], "the owner key is kept across restarts")
	devWaitReady(t, server)
	status, again := devGetOrganization(t, server, key)
	require.Equal(t, http.StatusOK, status, again)
	assert.Equal(t, org["id"], again["id"], "the organization survived the restart")
	devStop(t, p, data)
}
