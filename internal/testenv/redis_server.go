package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/loopback"
)

// redisStartAttempts bounds retries when another process takes the chosen
// port between picking it and redis-server binding it.
const redisStartAttempts = 5

// PrivateRedis starts a redis-server of the test's own (no persistence, on a
// free loopback port, data in a temporary directory) and returns a client on
// it; the server is killed when the test ends. Use it where a test must
// destroy everything in Redis (FLUSHALL, a restart): the shared server of
// Redis() serves other packages at the same time. A missing redis-server
// binary fails the test.
func PrivateRedis(t testing.TB) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): install it with scripts/deps.sh or your package manager (package redis-server); tests that wipe Redis need a private server", err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := range redisStartAttempts {
		addr, err := startRedisServer(t, bin, filepath.Join(dir, strconv.Itoa(attempt)), plainPort)
		if err != nil {
			lastErr = err
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb.Close() })
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("ping private redis-server on %s: %v", addr, err)
		}
		return rdb
	}
	t.Fatalf("start a private redis-server (%d attempts): %v", redisStartAttempts, lastErr)
	return nil
}

// plainPort listens on port without TLS: PrivateRedis's server.
func plainPort(port int) []string { return []string{"--port", strconv.Itoa(port)} }

// startRedisServer runs redis-server on a free port in dir, listening as
// listen says (plainPort, or TLS options), and waits for its "Ready to
// accept connections" line. It returns an error (and leaves nothing
// running) when the server exits first, e.g. because the port was taken
// meanwhile.
func startRedisServer(t testing.TB, bin, dir string, listen func(port int) []string) (string, error) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create redis directory: %w", err)
	}
	port, err := loopback.FreePort(nil)
	if err != nil {
		return "", err
	}
	args := append(listen(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	cmd := exec.Command(bin, args...) //nolint:noctx // killed in t.Cleanup; t.Context() would end it before the test's own cleanups that may still use it
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("redis-server stdout: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	select {
	case <-ready:
		t.Cleanup(stop)
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("redis-server on port %d exited before it was ready; its output:\n%s", port, log.String())
	case <-time.After(30 * time.Second):
		stop()
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("redis-server on port %d not ready after 30s; its output:\n%s", port, log.String())
	}
}
