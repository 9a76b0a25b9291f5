package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

var redisProcessID = regexp.MustCompile(`(?m)^process_id:(\d+)`)

// startRedis runs redis-server with an append-only file in DATA/redis, so
// the queues survive a restart (Postgres stays the truth either way: the
// queue reconciler would rebuild lost lists).
func (s *Stack) startRedis(ctx context.Context, pp *portPicker, prefer int) (string, int, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, errors.New("devstack: redis-server not found on PATH: install Redis (scripts/deps.sh, or the redis-server package), or set REDIS_URL to use your own")
	}
	dir := s.path("redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("devstack: create %s: %w", dir, err)
	}
	if _, err := stopLeftover("redis", dir, syscall.SIGTERM, s.opts.StopGrace, s.path("run", "redis.pid")); err != nil {
		return "", 0, fmt.Errorf("devstack: %w", err)
	}
	start := func(port int) (*proc, error) {
		return startProc(procSpec{
			name: "redis", path: bin,
			args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
				"--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"},
			env: os.Environ(), dir: dir, logPath: s.path("logs", "redis.log"),
			stopSig: syscall.SIGTERM, pidFile: s.path("run", "redis.pid"),
		})
	}
	ready := func(ctx context.Context, p *proc, port int) error {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
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
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), port, nil
}
