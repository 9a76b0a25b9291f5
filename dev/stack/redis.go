package stack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

var redisProcessID = regexp.MustCompile(`(?m)^process_id:(\d+)`)

// startRedis runs redis-server with an append-only file in DATA/redis, so
// the queues survive a restart (Postgres stays the truth either way: the
// queue reconciler would rebuild lost lists). Every client must give the
// password in DATA/redis-password; it reaches the server through a 0600
// configuration file, never the command line that ps shows everyone.
func (s *Stack) startRedis(ctx context.Context, pp *portPicker, prefer int) (string, int, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, errors.New("devstack: redis-server not found on PATH: install Redis (scripts/deps.sh, or the redis-server package), or set REDIS_URL to use your own")
	}
	dir := s.path("redis")
	if err := privateDir(dir); err != nil {
		return "", 0, err
	}
	if _, err := stopLeftover("redis", dir, syscall.SIGTERM, s.opts.StopGrace, s.path("run", "redis.pid")); err != nil {
		return "", 0, fmt.Errorf("devstack: %w", err)
	}
	password, err := s.redisPassword()
	if err != nil {
		return "", 0, err
	}
	conf := filepath.Join(dir, "redis.conf")
	if err := writeFileAtomic(conf, []byte(redisConf(password)), 0o600); err != nil {
		return "", 0, fmt.Errorf("devstack: %w", err)
	}
	start := func(port int) (*proc, error) {
		return startProc(procSpec{
			name: "redis", path: bin,
			args: []string{conf, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
				"--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"},
			env: os.Environ(), dir: dir, logPath: s.path("logs", "redis.log"),
			stopSig: syscall.SIGTERM, pidFile: s.path("run", "redis.pid"),
		})
	}
	ready := func(ctx context.Context, p *proc, port int) error {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: password, MaxRetries: -1})
		defer rdb.Close()
		// Another process's Redis on the port would answer too: only ours
		// reports our child's pid. A Redis loading its AOF answers LOADING.
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		m := redisProcessID.FindStringSubmatch(info)
		if m == nil || m[1] != strconv.Itoa(p.pid()) {
			return fmt.Errorf("another process answers on port %d", port)
		}
		return rdb.Ping(ctx).Err()
	}
	taken := func(out string) bool { return strings.Contains(out, "Address already in use") }
	_, port, err := s.launch(ctx, "redis", s.opts.RedisPort, prefer, pp, start, ready, taken)
	if err != nil {
		return "", 0, err
	}
	u := url.URL{Scheme: "redis", User: url.UserPassword("", password), Host: "127.0.0.1:" + strconv.Itoa(port), Path: "/0"}
	return u.String(), port, nil
}

// redisConf is DATA/redis/redis.conf; the other settings are flags.
func redisConf(password string) string {
	return "# Written by mpegflow dev on every start; edits are overwritten.\n" +
		"# Clients authenticate with the password in DATA/redis-password.\n" +
		"requirepass " + password + "\n"
}

// redisPassword reads DATA/redis-password, generating it on the first run
// (and on the first run of a data directory from before passwords).
func (s *Stack) redisPassword() (string, error) {
	path := s.path(RedisPasswordFile)
	password, ok, err := readSecret(path)
	if err != nil || ok {
		return password, err
	}
	password = newPassword()
	return password, writeSecret(path, password)
}
